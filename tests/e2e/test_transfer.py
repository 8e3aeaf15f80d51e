"""An agent hands a conversation it accepted to another queue: an agent there is offered it with the whole card,
the first agent is free at once, the figures and the events tell it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from contactcenter.store.transfers import ConversationTransfers
from tests.e2e.test_supervisors import queue_shows, until
from tests.running import AgentDesktop, FakeTwilioApi, RunningService
from tests.visitors import ChatVisitor

CUSTOMER = "+14155550134"


async def _accepted(service: RunningService, desktop: AgentDesktop, body: str) -> dict[str, Any]:
    await service.post_sms(sender=CUSTOMER, body=body)
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    return offer


async def _logged(service: RunningService, conversation_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The conversation's events and its interactions', in the log's order, numbered by the relay or not."""
    async with service.services.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT type, data::text FROM events WHERE data->>'conversation_id' = $1 ORDER BY coalesce(id, 1e18), seq",
            conversation_id,
        )
    return [(row["type"], json.loads(row["data"])) for row in rows]


async def test_a_transferred_sms_is_offered_in_the_other_queue_with_its_card_and_the_agent_is_free_at_once(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["sms"])
    await service.create_queue("service", ["sms"])
    ann = await service.available_agent("Ann", ("sales",))
    offer = await _accepted(service, ann, "My brakes squeal since the last service.")
    conversation_id = offer["reservation"]["conversation_id"]

    # Nobody of `service` is there yet: the work waits in its queue, and Ann is free for her next contact.
    transferred = await ann.command(
        {"type": "transfer", "conversation_id": conversation_id, "queue": "service"}, "transferred"
    )
    assert transferred == {"type": "transferred", "conversation_id": conversation_id, "queue": "service"}
    # The figures count a contact where it was routed and first answered (as the history does): sales; it waits
    # in service now, and its completion will count there.
    await queue_shows(service, "service", waiting=1, offered=0)
    await queue_shows(service, "sales", waiting=0, offered=1, answered=1, completed=0)
    refused = await ann.command({"type": "reply", "conversation_id": conversation_id, "text": "hello?"}, "error")
    assert refused["error"]["field"] == "conversation_id"  # no longer hers

    bob = await service.available_agent("Bob", ("service",))
    handed = await bob.receive("offer")
    assert handed["reservation"]["conversation_id"] == conversation_id
    bodies = [entry["body"] for entry in handed["card"]["timeline"]]
    assert "My brakes squeal since the last service." in bodies  # the whole card: Bob needs no repeat
    await bob.command({"type": "accept", "reservation_id": handed["reservation"]["id"]}, "accepted")
    await bob.command({"type": "reply", "conversation_id": conversation_id, "text": "Bring it in."}, "replied")
    assert [sent["Body"] for sent in fake_twilio.sent] == ["Bring it in."]
    await queue_shows(service, "service", waiting=0)
    await bob.command({"type": "complete", "conversation_id": conversation_id}, "completed")
    await queue_shows(service, "service", completed=1)

    # Ann takes the next contact at once: no wrap-up after a transfer.
    await service.post_sms(sender="+14155550199", body="Another question")
    assert (await ann.receive("offer"))["reservation"]["conversation_id"] != conversation_id

    async def told() -> bool:
        return "conversation.transferred" in [kind for kind, _ in await _logged(service, conversation_id)]

    await until(told, "conversation.transferred is written")
    logged = await _logged(service, conversation_id)
    kinds = [kind for kind, _ in logged]
    moved = dict(logged)
    assert kinds.index("interaction.transferred") < kinds.index(
        "reservation.created", kinds.index("interaction.transferred")
    )
    conversation = moved["conversation.transferred"]
    assert (conversation["from_agent_id"], conversation["channel"]) == (ann.agent_id, "sms")
    interaction = moved["interaction.transferred"]
    assert interaction["agent_id"] == ann.agent_id
    assert conversation["queue_id"] == interaction["queue_id"] != interaction["previous_queue_id"]
    assert conversation["previous_queue_id"] == interaction["previous_queue_id"]
    answered = [data["agent_id"] for kind, data in logged if kind == "interaction.answered"]
    assert answered == [ann.agent_id, bob.agent_id]
    for desktop in (ann, bob):
        await desktop.close()


async def test_a_transfer_back_to_the_same_queue_goes_to_another_agent_first(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    ann = await service.available_agent("Ann", ("sales",))
    offer = await _accepted(service, ann, "Hello")
    conversation_id = offer["reservation"]["conversation_id"]
    bob = await service.available_agent("Bob", ("sales",))
    await ann.command({"type": "transfer", "conversation_id": conversation_id, "queue": "sales"}, "transferred")
    assert (await bob.receive("offer"))["reservation"]["conversation_id"] == conversation_id
    for desktop in (ann, bob):
        await desktop.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"queue": "nowhere"}, "queue"),
        ({"queue": "calls"}, "queue"),  # it takes no SMS
        ({"queue": ""}, "queue"),
        ({"queue": "sa\x00les"}, "queue"),
        ({"queue": "q" * 201}, "queue"),
        ({"conversation_id": str(uuid.uuid4())}, "conversation_id"),
        ({"conversation_id": "not-a-uuid"}, "conversation_id"),
    ],
)
async def test_a_transfer_that_cannot_be_done_is_an_error_naming_the_field_and_changes_nothing(
    service: RunningService, change: dict[str, str], field: str
) -> None:
    await service.create_queue("sales", ["sms"])
    await service.create_queue("calls", ["voice"])
    ann = await service.available_agent("Ann", ("sales",))
    offer = await _accepted(service, ann, "Hello")
    conversation_id = offer["reservation"]["conversation_id"]
    command = {"type": "transfer", "conversation_id": conversation_id, "queue": "sales"} | change
    error = await ann.command(command, "error")
    assert error["error"]["field"] == field, error
    # Still hers: she replies and completes it.
    await ann.command({"type": "reply", "conversation_id": conversation_id, "text": "Yes?"}, "replied")
    await ann.command({"type": "complete", "conversation_id": conversation_id}, "completed")
    await ann.close()


async def test_nobody_transfers_a_conversation_another_agent_holds(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    ann = await service.available_agent("Ann", ("sales",))
    offer = await _accepted(service, ann, "Hello")
    conversation_id = offer["reservation"]["conversation_id"]
    mallory = await service.available_agent("Mallory", ("sales",))
    command = {"type": "transfer", "conversation_id": conversation_id, "queue": "sales"}
    error = await mallory.command(command, "error")
    assert (error["error"]["code"], error["error"]["field"]) == ("not_found", "conversation_id")
    # Twice by its holder: the second finds it no longer hers.
    await ann.command(command, "transferred")
    assert (await ann.command(command, "error"))["error"]["field"] == "conversation_id"
    for desktop in (ann, mallory):
        await desktop.close()


async def _on_a_call(service: RunningService, fake_twilio: FakeTwilioApi) -> tuple[AgentDesktop, str, str]:
    """Ann (sales) on a call she accepted; `service` has nobody yet. Her desktop, the call's SID, the
    conversation."""
    await service.create_queue("sales", ["voice"])
    await service.create_queue("service", ["voice"])
    ann = await service.available_agent("Ann", ("sales",))
    sid = "CA" + uuid.uuid4().hex
    await service.post_twilio("/channels/twilio/voice", service.call_form(sid, CUSTOMER))
    offer = await ann.receive("offer")
    await ann.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert [update["CallSid"] for update in fake_twilio.calls] == [sid]  # the caller is put through to Ann
    return ann, sid, offer["reservation"]["conversation_id"]


async def _call_events(service: RunningService, sid: str) -> list[tuple[str, dict[str, Any]]]:
    async with service.services.pool.acquire() as conn:
        rows = await conn.fetch("SELECT type, data::text FROM events WHERE subject = $1 ORDER BY seq", sid)
    return [(row["type"], json.loads(row["data"])) for row in rows]


async def test_a_transferred_call_waits_in_the_other_queue_and_is_put_through_to_the_agent_who_accepts_it(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    ann, sid, conversation_id = await _on_a_call(service, fake_twilio)
    await ann.command({"type": "transfer", "conversation_id": conversation_id, "queue": "service"}, "transferred")
    # Twilio takes the caller from Ann back into a queue: the `service` one, with its wait music.
    [_, back] = fake_twilio.calls
    assert back["CallSid"] == sid and ">service</Enqueue>" in back["Twiml"], back
    await queue_shows(service, "service", waiting=1)

    bob = await service.available_agent("Bob", ("service",))
    offer = await bob.receive("offer")
    assert offer["reservation"]["conversation_id"] == conversation_id
    await bob.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    [_, _, through] = fake_twilio.calls
    assert through["CallSid"] == sid and bob.agent_id in through["Twiml"], through  # Bob's phone rings
    kinds = [(kind, data.get("agent_id")) for kind, data in await _call_events(service, sid)]
    assert [k for k in kinds if k[0] != "call.ended"] == [
        ("call.connected", ann.agent_id),
        ("call.transferred", ann.agent_id),
        ("call.connected", bob.agent_id),
    ]
    # Ann is off the call: she is offered the next contact at once.
    another = "CA" + uuid.uuid4().hex
    await service.post_twilio("/channels/twilio/voice", service.call_form(another, "+14155550199"))
    assert (await ann.receive("offer"))["reservation"]["interaction"]["provider_id"] == another
    for desktop in (ann, bob):
        await desktop.close()


async def test_a_caller_who_hangs_up_after_a_transfer_while_waiting_has_abandoned_the_other_queue(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    ann, sid, conversation_id = await _on_a_call(service, fake_twilio)
    await ann.command({"type": "transfer", "conversation_id": conversation_id, "queue": "service"}, "transferred")
    await queue_shows(service, "service", waiting=1)
    ended = service.call_form(sid, CUSTOMER, status="completed", CallDuration="40")
    assert (await service.post_twilio("/channels/twilio/voice/status", ended)).status == 200
    # Answered once already (by Ann): not an abandon in the figures, which count a contact's first outcome; the
    # call's own events tell that the caller hung up waiting.
    await queue_shows(service, "service", waiting=0, abandoned=0)
    assert "call.abandoned" in [kind for kind, _ in await _call_events(service, sid)]
    await ann.close()


async def test_a_call_twilio_cannot_be_told_to_move_stays_with_its_agent(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    ann, _, conversation_id = await _on_a_call(service, fake_twilio)
    fake_twilio.calls_status = 500
    transfer = {"type": "transfer", "conversation_id": conversation_id, "queue": "service"}
    assert (await ann.command(transfer, "error"))["error"]["code"] == "unavailable"
    fake_twilio.calls_status = 200
    await queue_shows(service, "service", waiting=0)
    await ann.command(transfer, "transferred")  # told again, it goes
    await queue_shows(service, "service", waiting=1)
    await ann.close()


async def test_a_chat_visitor_sees_the_agent_leave_on_a_transfer_and_the_next_one_join(service: RunningService) -> None:
    await service.create_queue("web", ["chat"])
    await service.create_queue("billing", ["chat"])
    ann = await service.available_agent("Ann", ("web",))
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.say("Why was I charged twice?")
    offer = await ann.receive("offer")
    await ann.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert (await visitor.receive("agent"))["activity"] == "joined"
    transfer = {"type": "transfer", "conversation_id": offer["reservation"]["conversation_id"], "queue": "billing"}
    await ann.command(transfer, "transferred")
    assert await visitor.receive("agent") == {"type": "agent", "activity": "left", "name": "Ann"}

    bob = await service.available_agent("Bob", ("billing",))
    handed = await bob.receive("offer")
    assert [entry["body"] for entry in handed["card"]["timeline"]] == ["Why was I charged twice?"]
    await bob.command({"type": "accept", "reservation_id": handed["reservation"]["id"]}, "accepted")
    assert await visitor.receive("agent") == {"type": "agent", "activity": "joined", "name": "Bob"}
    await bob.command(
        {"type": "reply", "conversation_id": handed["reservation"]["conversation_id"], "text": "Refunded."}, "replied"
    )
    assert (await visitor.receive("message"))["text"] == "Refunded."
    await visitor.close()
    for desktop in (ann, bob):
        await desktop.close()


async def test_a_transfer_postgresql_cannot_record_still_reaches_the_next_agent(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live state has moved the work: its offer is told even when the record of the hand-over fails, and the next
    agent's accept gives it the conversation."""
    await service.create_queue("sales", ["sms"])
    await service.create_queue("service", ["sms"])
    ann = await service.available_agent("Ann", ("sales",))
    offer = await _accepted(service, ann, "Hello")
    conversation_id = offer["reservation"]["conversation_id"]
    bob = await service.available_agent("Bob", ("service",))

    async def fails(*_: object) -> bool:
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(ConversationTransfers, "record", fails)
    await ann.command({"type": "transfer", "conversation_id": conversation_id, "queue": "service"}, "transferred")
    handed = await bob.receive("offer")
    await bob.command({"type": "accept", "reservation_id": handed["reservation"]["id"]}, "accepted")
    await bob.command({"type": "reply", "conversation_id": conversation_id, "text": "Bob here."}, "replied")
    for desktop in (ann, bob):
        await desktop.close()
