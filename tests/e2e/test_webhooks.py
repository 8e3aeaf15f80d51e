"""Signed webhooks on the real services: receivers on loopback (allowed by CC_WEBHOOK_ALLOW_PRIVATE) that fail,
hang or never answer, events published onto the events exchange as the relay publishes them, and the SSRF
guard refusing private addresses without the setting (checked by refusal only: nothing connects to them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contactcenter.settings import Settings
from contactcenter.webhooks.deliveries import Deliveries
from tests.events_queue import read_log
from tests.running import RunningService, run_service
from tests.webhook_receivers import Receivers, ids_by_entity, verified

POLL_SECONDS = 20.0


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    started = Receivers()
    yield started
    await started.stop()


def loopback_settings(settings: Settings, **changes: Any) -> Settings:
    """Receivers on loopback allowed, and retries in milliseconds (the test's time, not a day's)."""
    return settings.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_timeout_seconds": 3.0,  # beyond a slow shared host's answer, which would be sent twice
            "webhook_retries": 5,
            "webhook_retry_base_seconds": 0.05,
            "webhook_retry_max_seconds": 0.2,
            "webhook_scan_seconds": 0.1,
            **changes,
        }
    )


SUBJECT = "0b7d6e1e-0000-4000-8000-000000000001"


def event(
    event_id: int, entity: str = "interaction", action: str = "received", subject: str = SUBJECT
) -> tuple[str, bytes]:
    """An envelope-shaped CloudEvent (docs/events.md) and its routing key."""
    body = {
        "specversion": "1.0",
        "id": str(event_id),
        "source": "/contactcenter",
        "type": f"org.contactcenter.{entity}.{action}",
        "subject": subject,
        "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "partitionkey": f"{entity}:{subject}",
        "sequence": str(event_id).zfill(20),
        "data": {"n": event_id},
    }
    return f"{entity}.{action}", json.dumps(body).encode()


async def publish(service: RunningService, routing_key: str, body: bytes) -> None:
    event_id = json.loads(body)["id"]
    await service.services.bus.publish(f"{service.settings.namespace}.events", routing_key, body, message_id=event_id)


async def register(
    service: RunningService, url: str, types: list[str], token: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else service.admin_headers()
    async with service.http.post(
        f"{service.base_url}/api/v1/webhooks", json={"url": url, "types": types}, headers=headers
    ) as response:
        return response.status, await response.json()


async def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + POLL_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {POLL_SECONDS}s: {what}"
        await asyncio.sleep(0.02)


async def test_a_receiver_that_fails_its_first_tries_gets_every_event_signed_and_in_order(
    service_settings: Settings, receivers: Receivers
) -> None:
    receiver = await receivers.start("fail", "hang")  # a 500, then no answer within the timeout
    async with run_service(loopback_settings(service_settings)) as service:
        status, webhook = await register(service, receiver.url, ["interaction.*", "client.created"])
        assert status == 201, webhook
        events = [event(1), event(2, "client", "created"), event(3, "interaction", "routed"), event(4)]
        for routing_key, body in [*events, event(9, "agent", "state_changed")]:  # the agent's is not wanted
            await publish(service, routing_key, body)
        await publish(service, *events[1])  # the bus may carry an event twice: it is delivered once
        await until(lambda: len(receiver.received) >= 4, "four events acknowledged")
        receiver.released.set()
        await asyncio.sleep(0.3)  # a duplicate or an unwanted event would arrive meanwhile
    assert [json.loads(r.body)["id"] for r in receiver.received] == ["1", "2", "3", "4"]
    assert [r.body for r in receiver.received] == [body for _, body in events]
    assert all(verified(webhook["secret"], r) for r in receiver.received)
    assert all(r.headers["Content-Type"] == "application/cloudevents+json" for r in receiver.received)
    assert receiver.requests == 6  # two failed tries of the first event, then one each


async def test_a_receiver_that_never_answers_does_not_delay_another(
    service_settings: Settings, receivers: Receivers
) -> None:
    dead = await receivers.start(*["hang"] * 10)
    healthy = await receivers.start()
    # The dead receiver holds each try far longer than the test waits: the healthy one must not wait behind it.
    async with run_service(loopback_settings(service_settings, webhook_timeout_seconds=60.0)) as service:
        assert (await register(service, dead.url, ["#"]))[0] == 201
        status, webhook = await register(service, healthy.url, ["#"])
        assert status == 201
        for event_id in range(1, 4):
            await publish(service, *event(event_id))
        await until(lambda: len(healthy.received) == 3, "the healthy receiver has every event")
        assert dead.open_requests == 1  # still holding the first event's try, alone
        assert [json.loads(r.body)["id"] for r in healthy.received] == ["1", "2", "3"]
        assert all(verified(webhook["secret"], r) for r in healthy.received)
        dead.released.set()


async def test_a_delivery_past_the_last_retry_is_parked_and_an_admin_replay_delivers_it(
    service_settings: Settings, receivers: Receivers
) -> None:
    receiver = await receivers.start("fail", "fail")
    async with run_service(loopback_settings(service_settings, webhook_retries=1)) as service:
        status, webhook = await register(service, receiver.url, ["interaction.#"])
        assert status == 201
        await publish(service, *event(7))
        parked = await poll_parked(service, webhook["id"])
        assert parked == 1 and receiver.received == []
        replay = f"{service.base_url}/api/v1/webhooks/{webhook['id']}/replay"
        async with service.http.post(replay, headers=service.admin_headers()) as response:
            assert response.status == 200
            assert await response.json() == {"replayed": 1}
        await until(lambda: len(receiver.received) == 1, "the replayed delivery arrives")
    assert json.loads(receiver.received[0].body)["id"] == "7"
    assert verified(webhook["secret"], receiver.received[0])


async def poll_parked(service: RunningService, webhook_id: str) -> int:
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        async with service.http.get(f"{service.base_url}/api/v1/webhooks", headers=service.admin_headers()) as r:
            listed = {hook["id"]: hook for hook in (await r.json())["webhooks"]}
        if listed[webhook_id]["parked"]:
            return int(listed[webhook_id]["parked"])
        assert time.monotonic() < deadline, "the delivery was never parked"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://192.168.0.10/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://localhost:8080/hook",  # a name, resolved (from /etc/hosts) to loopback
    ],
)
async def test_webhooks_may_not_reach_private_addresses_without_the_setting(service: RunningService, url: str) -> None:
    assert not service.settings.webhook_allow_private
    status, answer = await register(service, url, ["#"])
    assert status == 400
    assert answer["error"]["field"] == "url"
    assert "CC_WEBHOOK_ALLOW_PRIVATE" in answer["error"]["message"]
    async with service.http.get(f"{service.base_url}/api/v1/webhooks", headers=service.admin_headers()) as response:
        assert (await response.json())["webhooks"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "types": ["#"]}, "url"),
        ({"url": "http://user:pw@example.com/hook", "types": ["#"]}, "url"),
        ({"url": "http://example.com/" + "a" * 2000, "types": ["#"]}, "url"),
        ({"url": "http://example.com/hook", "types": []}, "types"),
        ({"url": "http://example.com/hook", "types": ["#"] * 21}, "types"),
        ({"url": "http://example.com/hook", "types": ["interaction.**"]}, "types.0"),
        ({"url": "http://example.com/hook", "types": ["#"], "secret": "mine"}, "secret"),
    ],
)
async def test_a_webhook_body_is_validated_naming_the_field(
    service: RunningService, body: dict[str, Any], field: str
) -> None:
    async with service.http.post(
        f"{service.base_url}/api/v1/webhooks", json=body, headers=service.admin_headers()
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == field


async def test_an_integration_manages_its_own_webhooks_and_nothing_else(
    service_settings: Settings, receivers: Receivers
) -> None:
    receiver = await receivers.start()
    async with run_service(loopback_settings(service_settings)) as service:
        integration = await create_integration(service)
        token = integration["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        _, admins = await register(service, receiver.url, ["#"])
        status, own = await register(service, receiver.url, ["client.*"], token=token)
        assert status == 201 and own["secret"]
        async with service.http.get(f"{service.base_url}/api/v1/webhooks", headers=bearer) as response:
            assert [hook["id"] for hook in (await response.json())["webhooks"]] == [own["id"]]
        async with service.http.delete(f"{service.base_url}/api/v1/webhooks/{admins['id']}", headers=bearer) as r:
            assert r.status == 404  # another's webhook is not there for it
        async with service.http.delete(f"{service.base_url}/api/v1/webhooks/{own['id']}", headers=bearer) as r:
            assert r.status == 204
        refused = [
            ("POST", "/api/v1/queues", {"name": "sales", "channels": ["sms"]}),
            ("POST", "/api/v1/agents", {"name": "Ann", "queues": ["sales"]}),
            ("POST", "/api/v1/integrations", {"name": "another"}),
            ("POST", f"/api/v1/webhooks/{admins['id']}/replay", None),
            ("GET", "/api/v1/clients/lookup?phone=%2B14155550142", None),
            ("GET", "/api/v1/agents/ws", None),
        ]
        for method, path, body in refused:
            async with service.http.request(method, service.base_url + path, json=body, headers=bearer) as r:
                assert r.status == 403, (method, path, r.status)
                assert (await r.json())["error"]["code"] == "forbidden"
        await service.create_queue("sales", ["sms"])
        agent = await service.create_agent("Ann", ["sales"])
        status, answer = await register(service, receiver.url, ["#"], token=agent["token"])
        assert status == 403 and answer["error"]["code"] == "forbidden"


async def create_integration(service: RunningService) -> dict[str, Any]:
    async with service.http.post(
        f"{service.base_url}/api/v1/integrations", json={"name": "ERP"}, headers=service.admin_headers()
    ) as response:
        assert response.status == 201
        created: dict[str, Any] = await response.json()
        return created


async def test_deliveries_pending_when_the_service_stops_go_out_after_it_restarts(
    service_settings: Settings, receivers: Receivers
) -> None:
    receiver = await receivers.start(*["fail"] * 1000)  # down for as long as the first service runs
    settings = loopback_settings(service_settings, webhook_retries=1000)
    async with run_service(settings) as service:
        status, webhook = await register(service, receiver.url, ["#"])
        assert status == 201
        for event_id in (1, 2):
            await publish(service, *event(event_id))
        await until(lambda: receiver.requests >= 2, "the first event tried twice")
    receiver.script.clear()  # the receiver is back; the events were acknowledged on the bus long ago
    async with run_service(settings):
        await until(lambda: len(receiver.received) == 2, "both events delivered by the new process")
    assert [json.loads(r.body)["id"] for r in receiver.received] == ["1", "2"]
    assert all(verified(webhook["secret"], r) for r in receiver.received)


def interleaved(entities: int, each: int) -> list[tuple[str, bytes]]:
    """`entities` entities' events, `each` apiece, their ids ascending and the entities taking turns."""
    subjects = [str(uuid.uuid4()) for _ in range(entities)]
    return [event(n + 1, subject=subjects[n % entities]) for n in range(entities * each)]


async def test_two_dispatchers_deliver_each_entitys_events_to_one_receiver_in_order(
    service_settings: Settings, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = await receivers.start()
    record = Deliveries.record

    async def unevenly(self: Deliveries, routing_key: str, event_id: str, sequence: int, body: bytes) -> Any:
        # A dispatcher is sometimes slower than the other (a busy host, a pause): the events' order must not
        # depend on which of them records first.
        await asyncio.sleep(random.uniform(0, 0.05))
        return await record(self, routing_key, event_id, sequence, body)

    monkeypatch.setattr(Deliveries, "record", unevenly)
    events = interleaved(entities=3, each=40)  # odd: an entity's events alternate between the two
    settings = loopback_settings(service_settings)
    first, second = contextlib.AsyncExitStack(), contextlib.AsyncExitStack()
    try:
        await first.enter_async_context(run_service(settings))
        service = await second.enter_async_context(run_service(settings))
        status, webhook = await register(service, receiver.url, ["#"])
        assert status == 201
        for n, (routing_key, body) in enumerate(events):
            await publish(service, routing_key, body)
            if n == len(events) // 2:
                await first.aclose()  # the one that began consuming stops mid-stream; the other takes over
        await until(lambda: len({r.body for r in receiver.received}) == len(events), "every event delivered")
    finally:
        await second.aclose()
        await first.aclose()
    for entity, ids in ids_by_entity(receiver.received).items():
        assert ids == sorted(ids), f"{entity}'s events were delivered out of order: {ids}"
    assert all(verified(webhook["secret"], r) for r in receiver.received)


async def test_events_recorded_while_postgresql_is_away_wait_for_it_and_keep_their_order(
    service_settings: Settings, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by this test: each failed recording handed the event back to the broker, which redelivered it at
    once; past the delivery limit it rested among the dead letters, never delivered to any webhook, and the
    entity's next events, recorded meanwhile, went out before it."""
    receiver = await receivers.start()
    record = Deliveries.record
    refused: list[str] = []
    failures = service_settings.delivery_limit + 3

    async def postgres_is_away(self: Deliveries, routing_key: str, event_id: str, sequence: int, body: bytes) -> Any:
        if event_id == "1" and len(refused) < failures:
            refused.append(event_id)
            raise ConnectionRefusedError(111, "Connect call failed")
        return await record(self, routing_key, event_id, sequence, body)

    monkeypatch.setattr(Deliveries, "record", postgres_is_away)
    events = [event(n) for n in range(1, 11)]
    async with run_service(loopback_settings(service_settings)) as service:
        assert (await register(service, receiver.url, ["#"]))[0] == 201
        for routing_key, body in events:
            await publish(service, routing_key, body)
        await until(lambda: len(receiver.received) == len(events), "every event delivered")
    assert len(refused) == failures
    assert [json.loads(r.body)["id"] for r in receiver.received] == [str(n) for n in range(1, 11)]


async def test_a_receiver_failing_its_first_tries_gets_every_event_the_service_made_each_signed(
    service_settings: Settings, receivers: Receivers
) -> None:
    """Issue 15's proof, end to end: contacts and an agent's work make their events; a receiver for `#` that
    fails its first tries (500s, then a try it holds past the timeout) acknowledges, in the end, every event of
    the log — the same bytes the log serves, each entity's in order, each verified against its signature."""
    receiver = await receivers.start("fail", "fail", "hang", "fail")
    settings = loopback_settings(service_settings, webhook_timeout_seconds=1.0)
    async with run_service(settings) as service:
        status, webhook = await register(service, receiver.url, ["#"])
        assert status == 201
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        senders = [f"+1415555{n:04d}" for n in range(5)]
        for sender in senders:
            assert (await service.post_sms(sender=sender, body="Is my car ready?")).status == 200
        for _ in senders:
            offer = await desktop.receive("offer", timeout=20)
            reservation = offer["reservation"]
            await desktop.command({"type": "accept", "reservation_id": reservation["id"]}, "accepted")
            await desktop.command({"type": "complete", "conversation_id": reservation["conversation_id"]}, "completed")
        await desktop.close()
        receiver.released.set()

        async def every_event_received() -> list[dict[str, Any]]:
            while True:
                logged = await read_log(service.http, service.base_url, limit=1000)
                received = {json.loads(r.body)["id"] for r in receiver.received}
                if logged and received == {event["id"] for event in logged}:  # one read may precede the last
                    return logged
                await asyncio.sleep(0.1)

        async with asyncio.timeout(POLL_SECONDS):
            logged = await every_event_received()
    bodies = {json.loads(r.body)["id"]: json.loads(r.body) for r in receiver.received}
    assert sorted(bodies, key=int) == [event["id"] for event in logged]  # nothing the log lacks
    assert [bodies[event["id"]] for event in logged] == logged
    assert all(verified(webhook["secret"], r) for r in receiver.received)
    for entity, ids in ids_by_entity(receiver.received).items():
        assert ids == sorted(ids), f"{entity}'s events were delivered out of order: {ids}"
    assert receiver.requests >= len(logged) + 4
    types = {event["type"].removeprefix("org.contactcenter.") for event in logged}
    assert {"interaction.received", "reservation.accepted", "conversation.closed", "agent.state_changed"} <= types


async def test_a_binding_the_broker_lost_comes_back_and_the_webhook_receives_again(
    service_settings: Settings, receivers: Receivers
) -> None:
    """A broker that came back without its bindings (no volume): the routers bind the webhooks' patterns again
    at their scan, and events reach the receiver again."""
    receiver = await receivers.start()
    async with run_service(loopback_settings(service_settings)) as service:
        status, _ = await register(service, receiver.url, ["client.*"])
        assert status == 201
        await service.services.bus.unbind(service.services.topology.webhooks_queue, "client.*")
        deadline = time.monotonic() + POLL_SECONDS
        event_id = 100
        while not receiver.received:
            assert time.monotonic() < deadline, "the webhook never received again"
            event_id += 1
            await publish(service, *event(event_id, "client", "created"))
            await asyncio.sleep(0.2)
    assert json.loads(receiver.received[0].body)["type"] == "org.contactcenter.client.created"


async def test_the_admin_deletes_an_integration_its_token_and_webhooks_go_with_it(
    service_settings: Settings, receivers: Receivers
) -> None:
    receiver = await receivers.start()
    async with run_service(loopback_settings(service_settings)) as service:
        integration = await create_integration(service)
        status, _ = await register(service, receiver.url, ["client.*"], token=integration["token"])
        assert status == 201
        deletion = f"{service.base_url}/api/v1/integrations/{integration['id']}"
        async with service.http.delete(deletion, headers={"Authorization": f"Bearer {integration['token']}"}) as r:
            assert r.status == 403  # only the admin
        async with service.http.delete(deletion, headers=service.admin_headers()) as r:
            assert r.status == 204
        async with service.http.get(f"{service.base_url}/api/v1/webhooks", headers=service.admin_headers()) as r:
            assert (await r.json())["webhooks"] == []
        bearer = {"Authorization": f"Bearer {integration['token']}"}
        async with service.http.get(f"{service.base_url}/api/v1/events", headers=bearer) as r:
            assert r.status == 401
        async with service.http.delete(deletion, headers=service.admin_headers()) as r:
            assert r.status == 404 and (await r.json())["error"]["field"] == "integration_id"
        async with service.http.delete(
            f"{service.base_url}/api/v1/integrations/nope", headers=service.admin_headers()
        ) as r:
            assert r.status == 400 and (await r.json())["error"]["field"] == "integration_id"
