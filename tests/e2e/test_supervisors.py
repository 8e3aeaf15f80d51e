"""Supervisors on the real services: the live figures follow an SMS from waiting to answered to completed, the
stream pushes them (and resumes), each role sees only its queues, and a supervisor's actions are done, audited
and told as events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg

from tests.conftest import DATABASE_URL
from tests.running import RunningService

SENDER = "+14155550134"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stats(service: RunningService, token: str | None = None) -> dict[str, Any]:
    headers = bearer(token) if token else service.admin_headers()
    async with service.http.get(f"{service.base_url}/api/v1/queues/stats", headers=headers) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


def queue(figures: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [q for q in figures["queues"] if q["name"] == name]
    assert found, f"no queue {name} in {[q['name'] for q in figures['queues']]}"
    return found[0]


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def queue_shows(service: RunningService, name: str, **expected: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal seen
        found = [q for q in (await stats(service))["queues"] if q["name"] == name]
        if not found:
            return False
        seen = found[0]
        return all(seen[key] == value for key, value in expected.items())

    await until(check, f"{name} shows {expected} (last seen {seen})")
    return seen


async def agent_shows(service: RunningService, agent_id: str, **expected: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal seen
        found = [a for a in (await stats(service))["agents"] if a["id"] == agent_id]
        seen = found[0] if found else {}
        return bool(found) and all(seen[key] == value for key, value in expected.items())

    await until(check, f"agent {agent_id} shows {expected} (last seen {seen})")
    return seen


class EventStream:
    """A Server-Sent Events client, as a browser's EventSource reads the stream."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.last_id: str | None = None

    async def next_frame(self, within: float = 10.0) -> dict[str, Any]:
        """The next `data:` frame (comments and `retry:` skipped)."""
        data: list[str] = []
        async with asyncio.timeout(within):
            while True:
                line = (await self.response.content.readline()).decode().rstrip("\n")
                if line.startswith("id: "):
                    self.last_id = line[4:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    frame: dict[str, Any] = json.loads("\n".join(data))
                    return frame

    async def frame_where(self, check: Callable[[dict[str, Any]], bool], within: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            frame = await self.next_frame(max(0.1, deadline - time.monotonic()))
            if check(frame):
                return frame


async def open_stream(service: RunningService, token: str, last_id: str | None = None) -> EventStream:
    headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
    response = await service.http.get(f"{service.base_url}/api/v1/supervisor/stream?token={token}", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return EventStream(response)


async def test_an_sms_moves_the_figures_from_waiting_to_answered_to_completed(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    assert (await service.post_sms(sender=SENDER, body="Is my car ready?")).status == 200

    waiting = await queue_shows(service, "sales", waiting=1, offered=1)
    assert waiting["oldest_waiting_since"] is not None
    assert waiting["channels"]["sms"]["waiting"] == 1
    assert waiting["agents"]["offline"] == 1

    desktop = await service.agent_desktop(agent["token"])
    await desktop.command({"type": "state", "state": "available"}, "state")
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    answered = await queue_shows(service, "sales", waiting=0, answered=1)
    assert answered["asa_seconds"] is not None and answered["asa_seconds"] >= 0
    await agent_shows(service, agent["id"], state="busy", working=[offer["reservation"]["conversation_id"]])

    conversation = offer["reservation"]["conversation_id"]
    await desktop.command({"type": "complete", "conversation_id": conversation}, "completed")
    done = await queue_shows(service, "sales", completed=1)
    assert done["aht_seconds"] is not None
    overall = (await stats(service))["overall"]
    assert (overall["offered"], overall["answered"], overall["completed"]) == (1, 1, 1)
    await agent_shows(service, agent["id"], state="available", handled_today=1, working=[])
    await desktop.close()


async def test_the_stream_pushes_a_change_and_resumes_from_the_last_id(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    boss = await service.create_supervisor("Sue", ["sales"])
    stream = await open_stream(service, boss["token"])
    first = await stream.frame_where(lambda frame: any(q["name"] == "sales" for q in frame["queues"]))
    assert queue(first, "sales")["waiting"] == 0

    assert (await service.post_sms(sender=SENDER, body="Hello")).status == 200
    await stream.frame_where(lambda frame: queue(frame, "sales")["waiting"] == 1)
    last_id = stream.last_id
    assert last_id is not None and int(last_id) > 0
    stream.response.close()

    # Resumed with the last id seen: nothing is sent until something changes.
    resumed = await open_stream(service, boss["token"], last_id)
    assert (await resumed.response.content.readline()).startswith(b"retry:")
    assert await resumed.response.content.readline() == b"\n"
    assert (await service.post_sms(sender="+14155550199", body="Me too")).status == 200
    frame = await resumed.frame_where(lambda f: queue(f, "sales")["waiting"] == 2)
    assert resumed.last_id is not None and int(resumed.last_id) > int(last_id)
    assert frame["overall"]["waiting"] == 2
    resumed.response.close()

    # From an older id, the figures come at once.
    again = await open_stream(service, boss["token"], "1")
    assert queue(await again.next_frame(), "sales")["waiting"] == 2
    again.response.close()


async def test_each_role_sees_only_its_queues(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    await service.create_queue("service", ["email"])
    sales_boss = await service.create_supervisor("Sue", ["sales"])
    service_agent = await service.create_agent("Bob", ["service"])
    sales_agent = await service.create_agent("Ann", ["sales"])
    integration = await service.create_integration("erp")

    async def all_known() -> bool:
        figures = await stats(service)
        return len(figures["queues"]) == 2 and len(figures["agents"]) == 2

    await until(all_known, "the watch knows the new queues and agents")
    assert [q["name"] for q in (await stats(service))["queues"]] == ["sales", "service"]
    assert [q["name"] for q in (await stats(service, integration["token"]))["queues"]] == ["sales", "service"]
    seen_by_boss = await stats(service, sales_boss["token"])
    assert [q["name"] for q in seen_by_boss["queues"]] == ["sales"]
    assert [a["name"] for a in seen_by_boss["agents"]] == ["Ann"]
    assert [q["name"] for q in (await stats(service, service_agent["token"]))["queues"]] == ["service"]
    assert [q["name"] for q in (await stats(service, sales_agent["token"]))["queues"]] == ["sales"]

    async with service.http.get(f"{service.base_url}/api/v1/queues/stats", headers=bearer("nobody")) as response:
        assert response.status == 401
    # A supervisor is not an admin, nor an agent, nor an integration.
    async with service.http.post(
        f"{service.base_url}/api/v1/queues",
        json={"name": "x", "channels": ["sms"]},
        headers=bearer(sales_boss["token"]),
    ) as response:
        assert response.status == 403
    async with service.http.get(f"{service.base_url}/api/v1/events", headers=bearer(sales_boss["token"])) as response:
        assert response.status == 403
    async with service.http.post(
        f"{service.base_url}/api/v1/supervisor/agents/{sales_agent['id']}/state",
        json={"state": "away"},
        headers=bearer(sales_agent["token"]),
    ) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"
    # Another supervisor's agent is not found for this one.
    async with service.http.post(
        f"{service.base_url}/api/v1/supervisor/agents/{service_agent['id']}/state",
        json={"state": "away"},
        headers=bearer(sales_boss["token"]),
    ) as response:
        assert response.status == 404


async def supervisor_acted(namespace: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": namespace})
    try:
        rows = await conn.fetch("SELECT data::text AS data FROM events WHERE type = 'supervisor.acted' ORDER BY seq")
        audit = await conn.fetchval("SELECT count(*) FROM supervisor_actions")
    finally:
        await conn.close()
    assert audit == len(rows)
    return [json.loads(row["data"]) for row in rows]


async def test_a_supervisor_sets_an_agents_state_and_moves_waiting_work_audited(
    service: RunningService, namespace: str
) -> None:
    await service.create_queue("sales", ["sms"])
    await service.create_queue("service", ["email"])
    boss = await service.create_supervisor("Sue", ["sales", "service"])
    ann = await service.available_agent("Ann", ("sales",))

    async with service.http.post(
        f"{service.base_url}/api/v1/supervisor/agents/{ann.agent_id}/state",
        json={"state": "away"},
        headers=bearer(boss["token"]),
    ) as response:
        assert response.status == 200, await response.text()
    assert (await ann.receive("state"))["state"] == "away"
    await agent_shows(service, ann.agent_id, state="away")

    assert (await service.post_sms(sender=SENDER, body="Brakes squeal")).status == 200
    await queue_shows(service, "sales", waiting=1)
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": namespace})
    try:
        conversation = await conn.fetchval("SELECT id FROM conversations")
    finally:
        await conn.close()

    bob = await service.available_agent("Bob", ("service",))
    async with service.http.post(
        f"{service.base_url}/api/v1/supervisor/conversations/{conversation}/move",
        json={"queue": "service"},
        headers=bearer(boss["token"]),
    ) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["queue"] == "service"
    offer = await bob.receive("offer")
    assert offer["reservation"]["conversation_id"] == str(conversation)
    await queue_shows(service, "sales", waiting=0)

    # Moving work that no longer waits: 409.
    await bob.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    async with service.http.post(
        f"{service.base_url}/api/v1/supervisor/conversations/{conversation}/move",
        json={"queue": "sales"},
        headers=bearer(boss["token"]),
    ) as response:
        assert response.status in (404, 409), await response.text()

    acted = await supervisor_acted(namespace)
    assert [(a["action"], a["supervisor_id"]) for a in acted] == [("agent_state", boss["id"]), ("move", boss["id"])]
    assert acted[0]["agent_id"] == ann.agent_id and acted[0]["state"] == "away"
    assert acted[1]["conversation_id"] == str(conversation)
    await ann.close()
    await bob.close()


async def test_bad_input_is_a_4xx_naming_the_field(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    boss = await service.create_supervisor("Sue", ["sales"])
    headers = bearer(boss["token"])
    cases = [
        ("POST", "/api/v1/supervisor/agents/not-a-uuid/state", {"state": "away"}, "agent_id"),
        ("POST", f"/api/v1/supervisor/agents/{boss['id']}/state", {"state": "lunch"}, "state"),
        ("POST", f"/api/v1/supervisor/conversations/{boss['id']}/move", {"queue": "Nope\u0000"}, "queue"),
        ("GET", "/api/v1/queues/history?from=2026-13-01", None, "from"),
        ("GET", "/api/v1/queues/history?from=2026-01-02&to=2026-01-01", None, "to"),
        ("GET", "/api/v1/queues/history?interval=hour", None, "interval"),
        ("GET", "/api/v1/queues/history?from=2026-01-01&to=2026-12-31&interval=15m", None, "to"),
    ]
    for method, path, body, field in cases:
        async with service.http.request(method, f"{service.base_url}{path}", json=body, headers=headers) as response:
            assert response.status == 400, (path, await response.text())
            assert (await response.json())["error"]["field"] == field, path
    # Not digits, and more digits than Python reads as an int.
    for last_event_id in ("12\u00e9", "9" * 5000):
        async with service.http.get(
            f"{service.base_url}/api/v1/supervisor/stream", headers={**headers, "Last-Event-ID": last_event_id}
        ) as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "Last-Event-ID"


async def test_history_per_interval_and_as_csv_shows_todays_contact_to_those_who_may_see_it(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    await service.create_queue("service", ["email"])
    outsider = await service.create_agent("Bob", ["service"])
    assert (await service.post_sms(sender=SENDER, body="Hello")).status == 200
    await queue_shows(service, "sales", offered=1)

    async with service.http.get(
        f"{service.base_url}/api/v1/queues/history", params={"interval": "day"}, headers=service.admin_headers()
    ) as response:
        assert response.status == 200, await response.text()
        rows = (await response.json())["rows"]
    assert [(row["queue"], row["offered"]) for row in rows] == [("sales", 1)]
    async with service.http.get(
        f"{service.base_url}/api/v1/queues/history.csv", headers=service.admin_headers()
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        lines = (await response.text()).splitlines()
    assert lines[0].startswith("start,queue,offered") and lines[1].split(",")[1:3] == ["sales", "1"]
    async with service.http.get(
        f"{service.base_url}/api/v1/queues/history.csv", headers=bearer(outsider["token"])
    ) as response:
        assert response.status == 200
        assert len((await response.text()).splitlines()) == 1  # the header only: sales is not Bob's
