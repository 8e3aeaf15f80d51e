"""An agent whose socket drops and comes back: it is told what it still holds and what it missed meanwhile,
and what it had only been offered goes to someone else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from contactcenter.live.state import AgentStatus
from schema import Channel, Hello, IdentityKind, Interaction
from tests.running import AgentDesktop, RunningService

SENDER = "+14155550134"


async def _connect(service: RunningService, token: str) -> tuple[AgentDesktop, dict[str, Any]]:
    """A desktop on a new socket, and the `hello` it was greeted with."""
    socket = await service.http.ws_connect(f"{service.base_url}/api/v1/agents/ws?token={token}")
    desktop = AgentDesktop(socket)
    hello = await desktop.receive("hello")
    desktop.agent_id = hello["agent"]["id"]
    return desktop, hello


async def _until_offline(service: RunningService, agent_id: str) -> None:
    """The gateway has seen the socket go (the agent is offline in live state)."""
    async with asyncio.timeout(10):
        while True:
            status: AgentStatus = await service.services.live.agent_status(uuid.UUID(agent_id))
            if status.state == "offline":
                return
            await asyncio.sleep(0.02)


async def _timeline(service: RunningService, phone: str) -> list[str]:
    async with service.http.get(
        f"{service.base_url}/api/v1/clients/lookup", params={"phone": phone}, headers=service.admin_headers()
    ) as response:
        assert response.status == 200, await response.text()
        return [entry["body"] for entry in (await response.json())["timeline"]]


async def _until_stored(service: RunningService, phone: str, body: str) -> None:
    async with asyncio.timeout(10):
        while body not in await _timeline(service, phone):
            await asyncio.sleep(0.02)


async def test_a_reconnecting_agent_is_told_its_open_conversation_with_what_came_while_it_was_away(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    desktop, hello = await _connect(service, agent["token"])
    assert hello["conversations"] == []
    await desktop.command({"type": "state", "state": "available"}, "state")
    await service.post_sms(sender=SENDER, body="Is my car ready?")
    offer = (await desktop.receive("offer"))["reservation"]
    await desktop.command({"type": "accept", "reservation_id": offer["id"]}, "accepted")

    await desktop.close()
    await _until_offline(service, desktop.agent_id)
    await service.post_sms(sender=SENDER, body="Hello? Still there?")
    await _until_stored(service, SENDER, "Hello? Still there?")

    desktop, hello = await _connect(service, agent["token"])
    Hello.model_validate(hello)
    [held] = hello["conversations"]
    assert (held["id"], held["channel"], held["queue"]) == (offer["conversation_id"], "sms", "sales")
    assert [(i["kind"], i["value"], i["verified"]) for i in held["card"]["identities"]] == [("phone", SENDER, True)]
    assert [entry["body"] for entry in held["card"]["timeline"]] == ["Hello? Still there?", "Is my car ready?"]
    interactions = held["interactions"]
    assert [(x["direction"], x["body"]) for x in interactions] == [
        ("inbound", "Is my car ready?"),
        ("inbound", "Hello? Still there?"),
    ]
    # The one it had seen carries the id it was offered with: what is new is what the desktop has not seen.
    assert interactions[0]["id"] == offer["interaction"]["id"]
    assert interactions[1]["id"] != offer["interaction"]["id"]

    await desktop.command({"type": "state", "state": "available"}, "state")
    replied = await desktop.command(
        {"type": "reply", "conversation_id": held["id"], "text": "Yes, sorry, it is."}, "replied"
    )
    assert replied["interaction"]["direction"] == "outbound"
    await desktop.command({"type": "complete", "conversation_id": held["id"]}, "completed")

    # Free again: the next client reaches it.
    await service.post_sms(sender="+14155550199", body="Someone else")
    fresh = (await desktop.receive("offer"))["reservation"]
    assert fresh["interaction"]["body"] == "Someone else"
    await desktop.close()


async def test_the_resume_shows_replies_too_and_a_completed_conversation_no_more(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    desktop, _ = await _connect(service, agent["token"])
    await desktop.command({"type": "state", "state": "available"}, "state")
    await service.post_sms(sender=SENDER, body="When do you open?")
    offer = (await desktop.receive("offer"))["reservation"]
    await desktop.command({"type": "accept", "reservation_id": offer["id"]}, "accepted")
    reply = {"type": "reply", "conversation_id": offer["conversation_id"], "text": "At nine."}
    replied = (await desktop.command(reply, "replied"))["interaction"]
    await desktop.close()

    desktop, hello = await _connect(service, agent["token"])
    [held] = hello["conversations"]
    assert [(x["id"], x["direction"], x["body"]) for x in held["interactions"]] == [
        (offer["interaction"]["id"], "inbound", "When do you open?"),
        (replied["id"], "outbound", "At nine."),
    ]
    await desktop.command({"type": "complete", "conversation_id": held["id"]}, "completed")
    await desktop.close()

    desktop, hello = await _connect(service, agent["token"])
    assert hello["conversations"] == []
    await desktop.close()


async def test_a_newer_socket_replaces_the_older_and_is_told_what_the_agent_holds(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    older, _ = await _connect(service, agent["token"])
    await older.command({"type": "state", "state": "available"}, "state")
    await service.post_sms(sender=SENDER, body="Is my car ready?")
    offer = (await older.receive("offer"))["reservation"]
    await older.command({"type": "accept", "reservation_id": offer["id"]}, "accepted")

    newer, hello = await _connect(service, agent["token"])
    async with asyncio.timeout(10):
        closing = await older.socket.receive()
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4000), closing
    assert [held["id"] for held in hello["conversations"]] == [offer["conversation_id"]]
    await newer.command({"type": "complete", "conversation_id": offer["conversation_id"]}, "completed")
    await newer.close()


async def test_an_offer_pending_when_the_socket_drops_is_revoked_and_goes_to_the_next_agent(
    service: RunningService,
) -> None:
    """Not left to expire (30 s, three times this test's patience): closing the socket takes it back at once."""
    await service.create_queue("sales", ["sms"])
    leaving = await service.available_agent("Ann")
    await service.post_sms(sender=SENDER, body="anyone?")
    offer = (await leaving.receive("offer"))["reservation"]
    staying = await service.available_agent("Bob")

    await leaving.close()
    again = (await staying.receive("offer"))["reservation"]
    assert again["conversation_id"] == offer["conversation_id"]
    assert again["interaction"]["id"] == offer["interaction"]["id"]
    await staying.command({"type": "accept", "reservation_id": again["id"]}, "accepted")
    await staying.close()


async def test_a_message_told_while_the_desktop_is_being_greeted_follows_the_hello(service: RunningService) -> None:
    """The gateway hears an agent's notices before it reads what the agent holds (so none falls in between):
    one that comes meanwhile waits for `hello`, which a desktop expects first."""
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    conversations = service.services.conversations
    read_held = conversations.held_by
    told: list[asyncio.Task[None]] = []

    async def a_message_comes_meanwhile(agent_id: uuid.UUID) -> str:
        news = Interaction(
            channel=Channel.SMS,
            provider_id="SM1",
            from_address=SENDER,
            sender_kind=IdentityKind.PHONE,
            body="meanwhile",
            received_at=datetime.now(UTC),
        )
        told.append(asyncio.create_task(service.services.notices.message(agent_id, uuid.uuid4(), news)))
        await asyncio.wait(told, timeout=0.2)  # ample for it to overtake, were it not held back
        return await read_held(agent_id)

    conversations.held_by = a_message_comes_meanwhile  # type: ignore[method-assign]  # the read, spied on
    desktop, hello = await _connect(service, agent["token"])
    assert hello["conversations"] == []
    assert (await desktop.receive("message"))["interaction"]["body"] == "meanwhile"
    await asyncio.gather(*told)
    await desktop.close()


async def test_a_desktop_whose_holdings_cannot_be_read_is_told_to_connect_again_and_then_gets_them(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    desktop, _ = await _connect(service, agent["token"])
    await desktop.command({"type": "state", "state": "available"}, "state")
    await service.post_sms(sender=SENDER, body="Is my car ready?")
    offer = (await desktop.receive("offer"))["reservation"]
    await desktop.command({"type": "accept", "reservation_id": offer["id"]}, "accepted")
    await desktop.close()

    conversations = service.services.conversations
    read_held = conversations.held_by

    async def database_drops_once(agent_id: uuid.UUID) -> str:
        conversations.held_by = read_held  # type: ignore[method-assign]  # the read restored
        raise asyncpg.PostgresConnectionError("connection was closed in the middle of operation")

    conversations.held_by = database_drops_once  # type: ignore[method-assign]  # the read fails once
    socket = await service.http.ws_connect(f"{service.base_url}/api/v1/agents/ws?token={agent['token']}")
    told = await socket.receive_json(timeout=10)
    assert told["type"] == "error" and told["error"]["code"] == "unavailable", told
    closing = await socket.receive(timeout=10)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, aiohttp.WSCloseCode.TRY_AGAIN_LATER)

    desktop, hello = await _connect(service, agent["token"])
    assert [held["id"] for held in hello["conversations"]] == [offer["conversation_id"]]
    await service.post_sms(sender=SENDER, body="Hello?")
    assert (await desktop.receive("message"))["interaction"]["body"] == "Hello?"
    await desktop.close()
