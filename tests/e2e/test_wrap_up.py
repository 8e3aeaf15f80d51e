"""Wrap-up on the real PostgreSQL, Redis and RabbitMQ: after completing a contact the agent is in wrap-up for
`CC_WRAP_UP_SECONDS` — its desktop is told, live state offers it nothing, the wallboard counts it — until it says
it is ready (`state` `available`) or the time is up (the routers' sweep ends it and tells the desktop)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from contactcenter.settings import Settings
from tests.e2e.test_supervisors import agent_shows, queue_shows, stats
from tests.running import AgentDesktop, RunningService, run_service

SENDER = "+14155550188"


async def create_queue(service: RunningService, wrap_up_seconds: int) -> dict[str, Any]:
    body = {"name": "sales", "channels": ["sms"], "wrap_up_seconds": wrap_up_seconds}
    async with service.http.post(f"{service.base_url}/api/v1/queues", json=body, headers=service.admin_headers()) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
        return created


async def answered_and_completed(service: RunningService, desktop: AgentDesktop, body: str) -> dict[str, Any]:
    """An SMS offered to `desktop`, accepted and completed: the state frame that follows the completion."""
    assert (await service.post_sms(sender=SENDER, body=body)).status == 200
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    conversation = offer["reservation"]["conversation_id"]
    await desktop.command({"type": "complete", "conversation_id": conversation}, "completed")
    return await desktop.receive("state")


async def next_sms_waits(service: RunningService, queue_id: str, body: str) -> None:
    assert (await service.post_sms(sender="+14155550199", body=body)).status == 200
    await queue_shows(service, "sales", waiting=1)
    assert await service.services.live.queue_length(uuid.UUID(queue_id)) == 1


async def test_an_agent_in_wrap_up_is_offered_nothing_until_it_says_it_is_ready(service_settings: Settings) -> None:
    async with run_service(service_settings.model_copy(update={"wrap_up_seconds": 600})) as service:
        sales = await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent("Ann", ("sales",))
        wrap_up = await answered_and_completed(service, desktop, "Is my car ready?")
        assert wrap_up["state"] == "wrap_up"
        assert datetime.fromisoformat(wrap_up["until"]) > datetime.fromisoformat((await stats(service))["as_of"])
        assert (await service.services.live.agent_status(uuid.UUID(desktop.agent_id))).state == "wrap_up"

        shown = await agent_shows(service, desktop.agent_id, state="wrap_up", working=[], handled_today=1)
        assert shown["since"] is not None
        await queue_shows(service, "sales", agents={"available": 0, "busy": 0, "away": 0, "wrap_up": 1, "offline": 0})
        await next_sms_waits(service, sales["id"], "And the invoice?")

        await desktop.command({"type": "state", "state": "available"}, "state")  # ready
        offer = await desktop.receive("offer")
        assert offer["reservation"]["interaction"]["body"] == "And the invoice?"
        await agent_shows(service, desktop.agent_id, state="busy")
        await desktop.close()


async def test_a_wrap_up_whose_time_is_up_ends_by_itself_and_the_desktop_hears_it(service_settings: Settings) -> None:
    async with run_service(service_settings.model_copy(update={"wrap_up_seconds": 1})) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent("Ann", ("sales",))
        assert (await answered_and_completed(service, desktop, "Is my car ready?"))["state"] == "wrap_up"
        back = await desktop.receive("state")  # the routers' sweep ended it
        assert back == {"type": "state", "state": "available"}
        await agent_shows(service, desktop.agent_id, state="available")
        assert (await service.post_sms(sender=SENDER, body="One more thing")).status == 200
        assert (await desktop.receive("offer"))["reservation"]["interaction"]["body"] == "One more thing"
        await desktop.close()


async def test_without_a_wrap_up_time_the_next_contact_is_offered_at_once(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent("Ann", ("sales",))
    assert (await service.post_sms(sender=SENDER, body="Is my car ready?")).status == 200
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert (await service.post_sms(sender="+14155550199", body="Hello?")).status == 200
    await queue_shows(service, "sales", waiting=1)
    conversation = offer["reservation"]["conversation_id"]
    await desktop.command({"type": "complete", "conversation_id": conversation}, "completed")
    assert (await desktop.receive("offer"))["reservation"]["interaction"]["body"] == "Hello?"
    await desktop.close()


async def test_nobody_sets_wrap_up_by_hand_neither_the_desktop_nor_a_supervisor(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent("Ann", ("sales",))
    for bad in ("wrap_up", "wrap_up\u0000", "WRAP_UP"):
        error = await desktop.command({"type": "state", "state": bad}, "error")
        assert (error["error"]["code"], error["error"]["field"]) == ("invalid", "state")
    boss = await service.create_supervisor("Sue", ["sales"])
    url = f"{service.base_url}/api/v1/supervisor/agents/{desktop.agent_id}/state"
    headers = {"Authorization": f"Bearer {boss['token']}", "Content-Type": "application/json"}
    # Invalid UTF-8 is no JSON at all: the body is at fault, not one field of it.
    for body, field in (
        (b'{"state": "wrap_up"}', "state"),
        (b'{"state": "\\u0000"}', "state"),
        (b'{"state": "\xff"}', "body"),
    ):
        async with service.http.post(url, data=body, headers=headers) as response:
            assert response.status == 400, await response.text()
            assert (await response.json())["error"]["field"] == field
    assert (await service.services.live.agent_status(uuid.UUID(desktop.agent_id))).state == "available"
    await desktop.close()


async def test_a_queues_own_wrap_up_time_comes_before_the_services(service_settings: Settings) -> None:
    async with run_service(service_settings.model_copy(update={"wrap_up_seconds": 600})) as service:
        created = await create_queue(service, 0)
        assert created["wrap_up_seconds"] == 0
        desktop = await service.available_agent("Ann", ("sales",))
        assert (await service.post_sms(sender=SENDER, body="Is my car ready?")).status == 200
        offer = await desktop.receive("offer")
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        assert (await service.post_sms(sender="+14155550199", body="Hello?")).status == 200
        await queue_shows(service, "sales", waiting=1)
        conversation = offer["reservation"]["conversation_id"]
        await desktop.command({"type": "complete", "conversation_id": conversation}, "completed")
        assert (await desktop.receive("offer"))["reservation"]["interaction"]["body"] == "Hello?", "no wrap-up"
        await desktop.close()


async def test_a_queue_with_a_wrap_up_time_puts_its_agents_in_wrap_up_where_the_service_sets_none(
    service: RunningService,
) -> None:
    await create_queue(service, 3600)
    desktop = await service.available_agent("Ann", ("sales",))
    wrap_up = await answered_and_completed(service, desktop, "Is my car ready?")
    assert wrap_up["state"] == "wrap_up"
    seconds = datetime.fromisoformat(wrap_up["until"]) - datetime.fromisoformat((await stats(service))["as_of"])
    assert 3500 < seconds.total_seconds() <= 3600
    await desktop.close()


async def test_a_bad_wrap_up_time_is_a_400_naming_it(service: RunningService) -> None:
    url = f"{service.base_url}/api/v1/queues"
    for bad in (-1, 3601, "ten", 1.5, True, "\u0000"):
        body = {"name": "sales", "channels": ["sms"], "wrap_up_seconds": bad}
        async with service.http.post(url, json=body, headers=service.admin_headers()) as response:
            assert response.status == 400, (bad, await response.text())
            assert (await response.json())["error"]["field"] == "wrap_up_seconds"


async def test_a_desktop_connecting_again_in_wrap_up_hears_after_hello_that_it_is_in_wrap_up(
    service_settings: Settings,
) -> None:
    """A reload during the wrap-up: the new connection's `hello` is followed by the `state` frame of the wrap-up,
    with the same end, so the desktop shows it again (and the agent can say it is ready)."""
    async with run_service(service_settings.model_copy(update={"wrap_up_seconds": 600})) as service:
        await create_queue(service, 600)
        agent = await service.create_agent("Ann", ["sales"])
        desktop = await service.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        wrap_up = await answered_and_completed(service, desktop, "Is my car ready?")
        assert wrap_up["state"] == "wrap_up"

        again = AgentDesktop(
            await service.http.ws_connect(f"{service.base_url}/api/v1/agents/ws?token={agent['token']}")
        )
        assert (await again.receive_any())["type"] == "hello"
        assert await again.receive_any() == wrap_up
        await again.command({"type": "state", "state": "available"}, "state")
        await again.close()
        await desktop.close()
