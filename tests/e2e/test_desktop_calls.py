"""The call on the agent's line, told to a desktop that shows the phone (`?calls=true`): in progress once the call
is connected to the agent, ended with its duration at its final status — through the signed voice webhooks, on
the real PostgreSQL, Redis and RabbitMQ. A desktop that did not ask is sent no call frame; a bad `calls` is a
400 naming the field."""

from __future__ import annotations

import uuid
from datetime import datetime

from tests.e2e.test_voice import MENU, VOICE, call, call_to_queue, put_menu
from tests.e2e.test_voice_busy import connected_call, setup
from tests.running import AgentDesktop, RunningService


async def desktop_with_calls(service: RunningService, token: str) -> AgentDesktop:
    socket = await service.http.ws_connect(f"{service.base_url}/api/v1/agents/ws?token={token}&calls=true")
    desktop = AgentDesktop(socket)
    desktop.agent_id = (await desktop.receive("hello"))["agent"]["id"]
    await desktop.command({"type": "state", "state": "available"}, "state")
    return desktop


async def test_a_desktop_that_shows_the_phone_hears_the_call_in_progress_then_ended_with_its_duration(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    agent = await service.create_agent("Ann", ["sales"])
    desktop = await desktop_with_calls(service, agent["token"])
    sid = "CA" + uuid.uuid4().hex
    await call_to_queue(service, sid, "1")
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["channel"] == "voice"

    await desktop.send({"type": "accept", "reservation_id": offer["reservation"]["id"]})
    # The call is connected while the accept is done: its frame comes before the accept's answer.
    in_progress = await desktop.receive("call")
    assert (in_progress["call_sid"], in_progress["state"], in_progress["duration_seconds"]) == (
        sid,
        "in_progress",
        None,
    )
    assert in_progress["agent_id"] == agent["id"]
    await desktop.receive("accepted")

    assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="42")).status == 200
    ended = await desktop.receive("call")
    assert (ended["call_sid"], ended["state"], ended["since"]) == (sid, "ended", in_progress["since"])
    assert isinstance(ended["duration_seconds"], int) and ended["duration_seconds"] >= 0
    assert datetime.fromisoformat(ended["since"]) <= datetime.now(datetime.fromisoformat(ended["since"]).tzinfo)
    # Repeated, the final status tells nothing more: the next frame is the answer to the next command.
    assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="42")).status == 200
    await desktop.command({"type": "state", "state": "away"}, "state")
    await desktop.close()


async def test_a_desktop_that_did_not_ask_is_sent_no_call_frame(service: RunningService) -> None:
    desktop, _ = await setup(service)
    sid = "CA" + uuid.uuid4().hex
    await connected_call(service, desktop, sid)
    assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="9")).status == 200
    await desktop.command({"type": "state", "state": "away"}, "state")  # no call frame came in between
    await desktop.close()


async def test_a_bad_calls_parameter_is_a_400_naming_it(service: RunningService) -> None:
    await service.create_queue("sales", ["voice"])
    agent = await service.create_agent("Ann", ["sales"])
    for bad in ("yes", "TRUE", "%00", "%FF", ""):
        url = f"{service.base_url}/api/v1/agents/ws?token={agent['token']}&calls={bad}"
        async with service.http.get(url) as response:
            assert response.status == 400, (bad, await response.text())
            assert (await response.json())["error"]["field"] == "calls"


async def test_a_call_freed_at_its_bound_by_the_sweep_is_told_ended_to_the_desktop(service: RunningService) -> None:
    """The call's final status never came: the routers' sweep frees its agent once the longest call is over
    (`CC_VOICE_MAX_CALL_SECONDS`), and the desktop hears the call ended, as at a final status."""
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    agent = await service.create_agent("Ann", ["sales"])
    desktop = await desktop_with_calls(service, agent["token"])
    sid = "CA" + uuid.uuid4().hex
    await call_to_queue(service, sid, "1")
    offer = await desktop.receive("offer")
    await desktop.send({"type": "accept", "reservation_id": offer["reservation"]["id"]})
    in_progress = await desktop.receive("call")
    await desktop.receive("accepted")

    # Its bound moved into the past, as hours on the line would: the next sweep (every second) frees it.
    calls = f"{service.settings.namespace}:calls"
    assert await service.services.redis.zadd(calls, {sid: 0}, xx=True, ch=True) == 1
    ended = await desktop.receive("call")
    assert (ended["call_sid"], ended["state"], ended["since"]) == (sid, "ended", in_progress["since"])
    assert ended["agent_id"] == agent["id"] and ended["duration_seconds"] >= 0
    # Its final status, should it come late, tells nothing more.
    assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="42")).status == 200
    await desktop.command({"type": "state", "state": "away"}, "state")
    await desktop.close()


async def test_a_desktop_connecting_again_during_a_call_hears_after_hello_the_call_in_progress(
    service: RunningService,
) -> None:
    """A reload (or a network that dropped) during a call: the new connection's `hello` is followed by the call
    on the agent's line, as it was told when it was connected, so the desktop shows the phone busy again."""
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    agent = await service.create_agent("Ann", ["sales"])
    desktop = await desktop_with_calls(service, agent["token"])
    sid = "CA" + uuid.uuid4().hex
    await call_to_queue(service, sid, "1")
    offer = await desktop.receive("offer")
    await desktop.send({"type": "accept", "reservation_id": offer["reservation"]["id"]})
    in_progress = await desktop.receive("call")
    await desktop.receive("accepted")

    socket = await service.http.ws_connect(f"{service.base_url}/api/v1/agents/ws?token={agent['token']}&calls=true")
    again = AgentDesktop(socket)
    hello = await again.receive_any()
    assert hello["type"] == "hello" and [c["id"] for c in hello["conversations"]] == [
        offer["reservation"]["conversation_id"]
    ]
    told = await again.receive_any()
    assert told == in_progress
    # Its end is told to the new connection.
    assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="42")).status == 200
    assert (await again.receive("call"))["state"] == "ended"
    await again.close()
    await desktop.close()
