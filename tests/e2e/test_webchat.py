"""Web chat on the real services: a visitor's socket in, the agent's card popped, the agent's reply back on the
visitor's socket; numbered messages delivered once and in order across reconnects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from contactcenter.settings import Settings
from tests.running import AgentDesktop, RunningService, run_service
from tests.visitors import ChatVisitor


async def _chat_accepted(service: RunningService, text: str) -> tuple[ChatVisitor, AgentDesktop, dict[str, Any]]:
    """A visitor who said `text`, and an agent of the chat queue who accepted the offer."""
    await service.create_queue("web", ["chat"])
    desktop = await service.available_agent(queues=("web",))
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.say(text)
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert await visitor.receive("agent") == {"type": "agent", "activity": "joined", "name": "Ann"}
    return visitor, desktop, offer


async def test_a_visitor_message_pops_the_card_and_the_agents_reply_reaches_the_visitors_socket(
    service: RunningService,
) -> None:
    await service.create_queue("web", ["chat"])
    desktop = await service.available_agent(queues=("web",))
    visitor = ChatVisitor(service.http, service.base_url)
    welcome = await visitor.connect()
    assert welcome["history"] == [] and welcome["token"]
    visitor_id = welcome["visitor_id"]

    ack = await visitor.say("Do you ship to Norway?")
    assert ack["seq"] == 1

    offer = await desktop.receive("offer")
    interaction = offer["reservation"]["interaction"]
    assert (interaction["channel"], interaction["body"]) == ("chat", "Do you ship to Norway?")
    assert offer["card"]["identities"] == [
        {
            "kind": "visitor",
            "value": visitor_id,
            "raw": visitor_id,
            "verified": True,
            "source": "contact",
            "flags": [],
            "shared": False,
        }
    ]
    conversation_id = offer["reservation"]["conversation_id"]
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert (await visitor.receive("agent"))["activity"] == "joined"

    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "We do, in 3 days."}, "replied")
    answer = await visitor.receive("message")
    assert (answer["from"], answer["text"], answer["seq"]) == ("agent", "We do, in 3 days.", 2)

    await visitor.say("Great, thanks")
    message = await desktop.receive("message")
    assert (message["conversation_id"], message["interaction"]["body"]) == (conversation_id, "Great, thanks")
    await visitor.close()
    await desktop.close()


async def test_a_visitor_who_reconnects_gets_what_it_missed_once_and_in_order(service: RunningService) -> None:
    visitor, desktop, offer = await _chat_accepted(service, "hello")
    conversation_id = offer["reservation"]["conversation_id"]
    await visitor.close()

    for text in ("one", "two", "three"):
        await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": text}, "replied")

    welcome = await visitor.connect()  # says it saw message 1
    assert [(e["seq"], e["from"], e["text"]) for e in welcome["history"]] == [
        (2, "agent", "one"),
        (3, "agent", "two"),
        (4, "agent", "three"),
    ]
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "four"}, "replied")
    assert (await visitor.receive("message"))["seq"] == 5
    await visitor.close()

    # A reload knows nothing: it asks for everything, and gets the whole conversation.
    reloaded = ChatVisitor(service.http, service.base_url, token=visitor.token)
    welcome = await reloaded.connect(after=0)
    assert [e["text"] for e in welcome["history"]] == ["hello", "one", "two", "three", "four"]
    assert [e["seq"] for e in welcome["history"]] == [1, 2, 3, 4, 5]
    await reloaded.close()
    await desktop.close()


async def test_a_visitor_message_sent_again_after_a_drop_is_kept_and_routed_once(service: RunningService) -> None:
    visitor, desktop, _ = await _chat_accepted(service, "first")
    await visitor.say("second", message_id="m-2")
    assert (await desktop.receive("message"))["interaction"]["body"] == "second"
    await visitor.close()

    # The widget did not see the ack of m-2 and sends it again on its new socket.
    await visitor.connect()
    ack = await visitor.say("second", message_id="m-2")
    assert ack["seq"] == 2
    await visitor.say("third")
    assert (await desktop.receive("message"))["interaction"]["body"] == "third"  # not "second" again

    welcome = await ChatVisitor(service.http, service.base_url, token=visitor.token).connect(after=0)
    assert [e["text"] for e in welcome["history"]] == ["first", "second", "third"]
    await visitor.close()
    await desktop.close()


async def test_two_tabs_of_one_visitor_both_see_each_message_once(service: RunningService) -> None:
    visitor, desktop, offer = await _chat_accepted(service, "hi")
    tab = ChatVisitor(service.http, service.base_url, token=visitor.token)
    await tab.connect(after=0)
    assert tab.seen == 1
    await tab.say("from the second tab")
    assert (await visitor.receive("message"))["text"] == "from the second tab"
    assert (await desktop.receive("message"))["interaction"]["body"] == "from the second tab"
    reply = {"type": "reply", "conversation_id": offer["reservation"]["conversation_id"], "text": "to both"}
    await desktop.command(reply, "replied")
    assert (await visitor.receive("message"))["seq"] == (await tab.receive("message"))["seq"] == 3
    for client in (visitor, tab, desktop):
        await client.close()


async def test_a_visitor_sees_only_its_own_conversation(service: RunningService) -> None:
    visitor, desktop, offer = await _chat_accepted(service, "mine")
    stranger = ChatVisitor(service.http, service.base_url)
    welcome = await stranger.connect(after=0)
    assert welcome["history"] == [] and welcome["visitor_id"] != visitor.welcome["visitor_id"]
    reply = {"type": "reply", "conversation_id": offer["reservation"]["conversation_id"], "text": "private"}
    await desktop.command(reply, "replied")
    assert (await visitor.receive("message"))["text"] == "private"
    assert stranger.socket is not None
    try:
        async with asyncio.timeout(0.5):
            frame = await stranger.socket.receive()
    except TimeoutError:
        frame = None
    assert frame is None, f"another visitor's message reached the stranger: {frame}"
    for client in (visitor, stranger, desktop):
        await client.close()


async def test_each_side_sees_the_other_type_and_the_visitor_sees_the_agent_join_and_leave(
    service: RunningService,
) -> None:
    visitor, desktop, offer = await _chat_accepted(service, "hello")  # the visitor saw the agent join there
    conversation_id = offer["reservation"]["conversation_id"]

    await visitor.send({"type": "typing"})
    typing = await desktop.receive("customer")
    assert (typing["conversation_id"], typing["activity"]) == (conversation_id, "typing")

    await desktop.send({"type": "typing", "conversation_id": conversation_id})  # not answered
    assert await visitor.receive("agent") == {"type": "agent", "activity": "typing", "name": "Ann"}

    await desktop.command({"type": "complete", "conversation_id": conversation_id}, "completed")
    assert await visitor.receive("agent") == {"type": "agent", "activity": "left", "name": "Ann"}
    await visitor.close()
    await desktop.close()


async def test_a_visitor_who_ends_the_chat_is_told_the_agent_too_and_the_chat_events_come_out(
    service: RunningService,
) -> None:
    visitor, desktop, offer = await _chat_accepted(service, "that's all")
    await visitor.send({"type": "end"})
    await visitor.receive("ended")
    ended = await desktop.receive("customer")
    assert (ended["conversation_id"], ended["activity"]) == (offer["reservation"]["conversation_id"], "ended")
    assert (await visitor.connect())["ended"] is True

    # Writing again starts a new chat: its events say so.
    await visitor.say("one more thing")
    visitor_id = visitor.welcome["visitor_id"]
    async with asyncio.timeout(10):
        while True:
            async with service.http.get(
                f"{service.base_url}/api/v1/events", params={"limit": "1000"}, headers=service.admin_headers()
            ) as response:
                events = (await response.json())["events"]
            chat = [e for e in events if e["partitionkey"] == f"chat:{visitor_id}"]
            if len(chat) >= 5:
                break
            await asyncio.sleep(0.1)
    assert [(e["type"].removeprefix("org.contactcenter."), e["data"]) for e in chat] == [
        ("chat.started", {"visitor_id": visitor_id}),
        ("chat.message", {"visitor_id": visitor_id, "seq": 1, "sender": "visitor"}),
        ("chat.ended", {"visitor_id": visitor_id}),
        ("chat.started", {"visitor_id": visitor_id}),
        ("chat.message", {"visitor_id": visitor_id, "seq": 2, "sender": "visitor"}),
    ]
    await visitor.close()
    await desktop.close()


async def test_what_a_visitor_says_it_is_is_shown_as_a_claim_with_the_card_it_may_be_and_never_merged(
    service: RunningService,
) -> None:
    await service.create_queue("phones", ["sms"])
    assert (await service.post_sms(sender="+14155550134", body="my order?")).status == 200
    async with asyncio.timeout(10):
        while True:  # the router stores it soon after Twilio's answer
            async with service.http.get(
                f"{service.base_url}/api/v1/clients/lookup",
                params={"phone": "+14155550134"},
                headers=service.admin_headers(),
            ) as response:
                if response.status == 200:
                    known = (await response.json())["client"]["id"]
                    break
            await asyncio.sleep(0.05)

    await service.create_queue("web", ["chat"])
    desktop = await service.available_agent(queues=("web",))
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    claim = {"type": "identify", "name": " Eve ", "email": "Owner@Example.com", "phone": "(415) 555-0134"}
    await visitor.send(claim)
    identified = await visitor.receive("identified")
    assert identified == {"type": "identified", "name": "Eve", "email": "owner@example.com", "phone": "+14155550134"}
    await visitor.say("Where is my order?")

    offer = await desktop.receive("offer")
    # The card is the visitor's own: the claimed phone's card is not merged into it, nor shown in its place.
    assert [identity["kind"] for identity in offer["card"]["identities"]] == ["visitor"]
    assert offer["card"]["client"]["id"] != known
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    claims = await desktop.receive("claims")
    assert (claims["name"], claims["email"], claims["phone"]) == ("Eve", "owner@example.com", "+14155550134")
    assert claims["possible_matches"] == [
        {"client_id": known, "score": 0.5, "reasons": ["holds the phone the customer claims (not verified)"]}
    ]

    # A claim made while the agent holds the chat is shown at once.
    assert (await visitor.receive("agent"))["activity"] == "joined"
    await visitor.send({"type": "identify", "name": "Eve Smith"})
    assert (await visitor.receive("identified"))["phone"] == "+14155550134"
    assert (await desktop.receive("claims"))["name"] == "Eve Smith"
    async with service.http.get(
        f"{service.base_url}/api/v1/clients/{known}", headers=service.admin_headers()
    ) as response:
        assert [i["kind"] for i in (await response.json())["identities"]] == ["phone"]
    await visitor.close()
    await desktop.close()


async def test_the_welcome_says_whether_an_agent_is_there_and_a_message_left_meanwhile_waits_for_one(
    service: RunningService,
) -> None:
    await service.create_queue("web", ["chat"])
    visitor = ChatVisitor(service.http, service.base_url)
    assert (await visitor.connect())["agents_available"] is False  # nobody of the chat queue is connected
    await visitor.send({"type": "identify", "email": "late@example.com", "phone": "+1 415 555 0177"})
    await visitor.receive("identified")
    await visitor.say("Please call me back tomorrow")  # left as a message: it waits in the queue
    await visitor.close()

    # The agent who comes gets the message left, and who asked to be answered.
    desktop = await service.available_agent(queues=("web",))
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["body"] == "Please call me back tomorrow"
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    claims = await desktop.receive("claims")
    assert (claims["email"], claims["phone"]) == ("late@example.com", "+14155550177")

    other = await service.available_agent(name="Bo", queues=("web",))
    async with asyncio.timeout(10):
        while True:
            newcomer = ChatVisitor(service.http, service.base_url)
            available = (await newcomer.connect())["agents_available"]
            await newcomer.close()
            if available:
                break
            await asyncio.sleep(0.2)  # what the service remembers lasts a second
    await desktop.close()
    await other.close()


@pytest.mark.parametrize("today", [True, False])
async def test_the_welcome_says_whether_the_chat_is_open_by_its_hours(service_settings: Settings, today: bool) -> None:
    weekday = datetime.now(UTC).weekday()
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday if today else (weekday + 1) % 7]
    settings = service_settings.model_copy(update={"chat_hours": f"{day} 00:00-24:00"})
    async with run_service(settings) as service:
        visitor = ChatVisitor(service.http, service.base_url)
        assert (await visitor.connect())["open_now"] is today
        await visitor.close()
