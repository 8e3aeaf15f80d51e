"""The spine on the real PostgreSQL, RabbitMQ and Redis: an SMS in, a client card resolved, an agent popped."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from contactcenter.clock import now_ms
from contactcenter.errors import Unavailable
from contactcenter.host.app import SERVICES
from contactcenter.live import Reservation, Task
from contactcenter.settings import Settings
from contactcenter.store import InteractionInContext
from tests.conftest import DATABASE_URL
from tests.running import FakeTwilioApi, RunningService, run_service

SENDER = "(415) 555-0134"
SENDER_E164 = "+14155550134"


async def test_sms_pops_the_whole_card_and_the_next_sms_joins_the_accepted_conversation(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms", "voice"])
    desktop = await service.available_agent()

    response = await service.post_sms(sender=SENDER, body="Is my car ready?")
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert "<Response" in await response.text()

    offer = await desktop.receive("offer")
    card = offer["card"]
    assert card["identities"] == [
        {
            "kind": "phone",
            "value": SENDER_E164,
            "raw": SENDER,
            "verified": True,
            "source": "contact",
            "flags": [],
            "shared": False,
        }
    ]
    assert [(e["channel"], e["direction"], e["body"]) for e in card["timeline"]] == [
        ("sms", "inbound", "Is my car ready?")
    ]
    reservation = offer["reservation"]
    assert reservation["interaction"]["body"] == "Is my car ready?"
    assert reservation["queue"] == "sales"

    accepted = await desktop.command({"type": "accept", "reservation_id": reservation["id"]}, "accepted")
    assert accepted["conversation_id"] == reservation["conversation_id"]

    await service.post_sms(sender="+1 415 555 0134", body="It's the blue one")
    message = await desktop.receive("message")
    assert message["conversation_id"] == reservation["conversation_id"]
    assert message["interaction"]["body"] == "It's the blue one"

    async with service.http.get(
        f"{service.base_url}/api/v1/clients/lookup", params={"phone": SENDER}, headers=service.admin_headers()
    ) as response:
        assert response.status == 200
        looked_up = await response.json()
    assert looked_up["client"]["id"] == card["client"]["id"]
    assert [e["body"] for e in looked_up["timeline"]] == ["It's the blue one", "Is my car ready?"]
    assert {e["conversation_id"] for e in looked_up["timeline"]} == {reservation["conversation_id"]}

    async with service.http.get(
        f"{service.base_url}/api/v1/clients/{card['client']['id']}", headers=service.admin_headers()
    ) as response:
        assert response.status == 200
        assert (await response.json())["client"]["id"] == card["client"]["id"]
    await desktop.close()


async def test_twilio_retry_of_same_message_sid_is_stored_once_and_offered_once(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    sid = "SM" + "a" * 32

    for _ in range(3):
        response = await service.post_sms(sender=SENDER, body="hello", message_sid=sid)
        assert response.status == 200
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    # Twilio retries once more after the agent took the conversation: that is not news to the agent.
    assert (await service.post_sms(sender=SENDER, body="hello", message_sid=sid)).status == 200
    await service.post_sms(sender=SENDER, body="second")
    assert (await desktop.receive("message"))["interaction"]["body"] == "second"

    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service.settings.database_schema})
    try:
        assert await conn.fetchval("SELECT count(*) FROM interactions WHERE body = 'hello'") == 1
        assert await conn.fetchval("SELECT count(*) FROM clients") == 1
    finally:
        await conn.close()
    await desktop.close()


async def test_sms_waits_in_the_queue_until_an_agent_becomes_available(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Bob", ["sales"])
    assert (await service.post_sms(sender=SENDER, body="anyone there?")).status == 200

    desktop = await service.agent_desktop(agent["token"])
    await desktop.command({"type": "state", "state": "available"}, "state")
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["body"] == "anyone there?"
    await desktop.close()


async def test_a_contact_after_one_that_found_no_agent_free_still_pops_its_whole_card(
    service: RunningService,
) -> None:
    """Once a contact found no agent free, the router records the next without its card (it will most likely
    wait too). When an agent is free for it after all, the offer reads the card: whole, this contact on top."""
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Bob", ["sales"])
    await service.post_sms(sender="+14155550101", body="nobody is here")
    queue_id = await service.services.pool.fetchval("SELECT id FROM queues")
    async with asyncio.timeout(10):
        while await service.services.live.queue_length(queue_id) != 1:
            await asyncio.sleep(0.02)
    desktop = await service.agent_desktop(agent["token"])
    await desktop.command({"type": "state", "state": "available"}, "state")
    waited = (await desktop.receive("offer"))["reservation"]
    await desktop.command({"type": "accept", "reservation_id": waited["id"]}, "accepted")
    await desktop.command({"type": "complete", "conversation_id": waited["conversation_id"]}, "completed")

    await service.post_sms(sender="+14155550102", body="and now?")
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["body"] == "and now?"
    assert offer["reservation"]["queue"] == "sales"
    assert [(i["kind"], i["value"], i["verified"]) for i in offer["card"]["identities"]] == [
        ("phone", "+14155550102", True)
    ]
    assert offer["card"]["counts"] == {"sms": 1}
    assert [entry["body"] for entry in offer["card"]["timeline"]] == ["and now?"]
    await desktop.close()


async def test_completed_conversation_frees_the_agent_for_the_next_client(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    await service.post_sms(sender="+14155550101", body="first client")
    await service.post_sms(sender="+14155550102", body="second client")

    first = await desktop.receive("offer")
    assert first["reservation"]["interaction"]["body"] == "first client"
    await desktop.command({"type": "accept", "reservation_id": first["reservation"]["id"]}, "accepted")
    conversation_id = first["reservation"]["conversation_id"]
    await desktop.command({"type": "complete", "conversation_id": conversation_id}, "completed")

    second = await desktop.receive("offer")
    assert second["reservation"]["interaction"]["body"] == "second client"
    await desktop.close()


async def test_unanswered_offer_is_revoked_and_goes_to_another_agent(service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"reservation_timeout_seconds": 0.5})
    async with run_service(settings) as service:
        await service.create_queue("sales", ["sms"])
        sleepy = await service.available_agent()
        await service.post_sms(sender=SENDER, body="hello?")
        missed = await sleepy.receive("offer")

        awake = await service.available_agent()
        revoked = await sleepy.receive("revoked")
        assert (revoked["reservation_id"], revoked["reason"]) == (missed["reservation"]["id"], "expired")
        offer = await awake.receive("offer")
        assert offer["reservation"]["conversation_id"] == missed["reservation"]["conversation_id"]
        await sleepy.close()
        await awake.close()


async def test_an_offer_lost_with_a_failed_attempt_is_made_again_when_the_interaction_is_redelivered(
    service: RunningService,
) -> None:
    """The router reserved the agent, then could not tell it (the broker refused the offer): the delivery fails,
    comes back, and the agent is offered the same reservation — not left waiting until the reservation expires
    (30 s, three times this test's patience)."""
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    notices = service.services.notices
    offer_once = notices.offer
    failed: list[Reservation] = []

    async def broker_refuses_the_first(reservation: Reservation, *, known: InteractionInContext | None = None) -> None:
        if not failed:
            failed.append(reservation)
            raise Unavailable("RabbitMQ did not confirm the message (publish)")
        await offer_once(reservation, known=known)

    notices.offer = broker_refuses_the_first  # type: ignore[method-assign]  # one offer fails, as a broker would
    await service.post_sms(sender=SENDER, body="Anyone there?")
    offer = await desktop.receive("offer", timeout=10)
    assert [str(r.id) for r in failed] == [offer["reservation"]["id"]], "the same reservation, told this time"
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    await desktop.close()


async def test_broker_that_does_not_confirm_gets_twilio_a_503_to_retry(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    await service.app[SERVICES].bus.close()
    response = await service.post_sms(sender=SENDER, body="lost?")
    assert response.status == 503


async def test_agent_reply_leaves_by_twilio_and_lands_on_the_timeline(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    await service.post_sms(sender=SENDER_E164, body="When do you open?")
    offer = await desktop.receive("offer")
    conversation_id = offer["reservation"]["conversation_id"]
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")

    replied = await desktop.command(
        {"type": "reply", "conversation_id": conversation_id, "text": "At nine."}, "replied"
    )
    assert fake_twilio.sent == [{"To": SENDER_E164, "From": "+15005550006", "Body": "At nine."}]
    assert replied["interaction"]["direction"] == "outbound"

    async with service.http.get(
        f"{service.base_url}/api/v1/clients/lookup", params={"phone": SENDER_E164}, headers=service.admin_headers()
    ) as response:
        timeline = (await response.json())["timeline"]
    assert [(e["direction"], e["body"]) for e in timeline] == [
        ("outbound", "At nine."),
        ("inbound", "When do you open?"),
    ]
    # Replying in somebody else's (or no) conversation is refused on the socket.
    error = await desktop.command(
        {"type": "reply", "conversation_id": "00000000-0000-4000-8000-000000000000", "text": "hi"}, "error"
    )
    assert error["error"]["field"] == "conversation_id"
    await desktop.close()


async def test_an_agent_stepping_away_hands_its_pending_offer_to_another(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    leaving = await service.available_agent()
    await service.post_sms(sender=SENDER, body="anyone?")
    offer = await leaving.receive("offer")
    staying = await service.available_agent()

    await leaving.command({"type": "state", "state": "away"}, "state")
    revoked = await leaving.receive("revoked")
    assert (revoked["reservation_id"], revoked["reason"]) == (offer["reservation"]["id"], "agent_unavailable")
    again = await staying.receive("offer")
    assert again["reservation"]["conversation_id"] == offer["reservation"]["conversation_id"]
    await leaving.close()
    await staying.close()


async def test_a_rejected_offer_goes_to_the_next_agent(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    first = await service.available_agent()
    await service.post_sms(sender=SENDER, body="hello")
    offer = await first.receive("offer")
    second = await service.available_agent()

    await first.command({"type": "reject", "reservation_id": offer["reservation"]["id"]}, "rejected")
    again = await second.receive("offer")
    assert again["reservation"]["conversation_id"] == offer["reservation"]["conversation_id"]
    await first.close()
    await second.close()


async def test_work_for_a_conversation_closed_meanwhile_frees_the_agent_and_its_contact_is_routed_again(
    service: RunningService,
) -> None:
    """Under load a router may read a conversation as waiting for an agent just before the agent who took it
    commits, and queue its work only after that agent has wrapped it up: the contact it recorded lands in a
    closed conversation, and the next agent is offered work nobody can do. The accept is refused, that agent is
    not held by it, and the contact is offered again in a conversation of its own."""
    await service.create_queue("sales", ["sms"])
    first = await service.available_agent()
    await service.post_sms(sender=SENDER, body="first contact")
    offer = (await first.receive("offer"))["reservation"]
    await first.command({"type": "accept", "reservation_id": offer["id"]}, "accepted")
    await service.post_sms(sender=SENDER, body="sent as the agent wraps up")
    raced = (await first.receive("message"))["interaction"]
    await first.command({"type": "complete", "conversation_id": offer["conversation_id"]}, "completed")
    await first.command({"type": "state", "state": "away"}, "state")

    second = await service.available_agent()
    # The router that read the conversation as waiting queues the raced contact's work only now.
    queue_id = await service.services.pool.fetchval("SELECT id FROM queues")
    stale = Task(uuid.UUID(offer["conversation_id"]), queue_id, uuid.UUID(raced["id"]))
    await service.services.notices.announce(await service.services.live.enqueue(stale, now_ms()))
    late = (await second.receive("offer"))["reservation"]
    assert late["conversation_id"] == offer["conversation_id"]
    refused = await second.command({"type": "accept", "reservation_id": late["id"]}, "error")
    assert refused["error"]["field"] == "conversation_id", refused

    again = (await second.receive("offer"))["reservation"]
    assert again["interaction"]["id"] == raced["id"]
    assert again["conversation_id"] != offer["conversation_id"]
    await second.command({"type": "accept", "reservation_id": again["id"]}, "accepted")
    await second.command({"type": "complete", "conversation_id": again["conversation_id"]}, "completed")

    # Free again: the next contact reaches it.
    await service.post_sms(sender="+14155550999", body="someone else, later")
    fresh = (await second.receive("offer"))["reservation"]
    assert fresh["interaction"]["body"] == "someone else, later"
    await first.close()
    await second.close()


async def test_a_contact_recorded_as_its_conversation_is_being_accepted_reaches_the_agent_who_took_it(
    service: RunningService,
) -> None:
    """An accept books the conversation in live state, then in PostgreSQL. A contact recorded between the two
    reads the conversation as still waiting, and its work is queued to a task an agent holds already: the
    contact is told to that agent as a message, not left unannounced until the conversation closes."""
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    await service.post_sms(sender=SENDER, body="first contact")
    offer = (await desktop.receive("offer"))["reservation"]
    # The accept has reached live state, not yet PostgreSQL (as in the gateway, between its two awaits).
    await service.services.live.accept(uuid.UUID(desktop.agent_id), uuid.UUID(offer["id"]), now_ms())
    await service.post_sms(sender=SENDER, body="sent as the agent accepts")
    told = await desktop.receive("message")
    assert (told["conversation_id"], told["interaction"]["body"]) == (
        offer["conversation_id"],
        "sent as the agent accepts",
    )
    await desktop.close()
