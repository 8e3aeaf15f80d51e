"""Notices for an agent whose socket this process holds go straight to it; the rest go through the relay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg

from contactcenter.agents.notices import AgentNotices
from contactcenter.live import LiveChanges, Reservation
from contactcenter.store.conversations import Conversations, InteractionInContext
from schema import Channel, ClientCard, Interaction
from schema.cards import ClientSummary
from schema.offers import (
    AGENT_NOTICE,
    InboundMessage,
    Offer,
    OfferedReservation,
    Revoked,
    RevokeReason,
    notice_ids,
    offer_json,
)


class SpyRelay:
    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    async def send(self, agent_id: uuid.UUID, body: bytes) -> None:
        self.sent.append(agent_id)


class Here:
    """The sockets this process holds."""

    def __init__(self, *agents: uuid.UUID) -> None:
        self.agents = set(agents)
        self.delivered: list[tuple[uuid.UUID, dict[str, object]]] = []

    async def deliver_here(self, agent_id: uuid.UUID, body: bytes) -> bool:
        if agent_id not in self.agents:
            return False
        self.delivered.append((agent_id, json.loads(body)))
        return True


def _sms() -> Interaction:
    return Interaction(
        channel=Channel.SMS, provider_id="SM1", from_address="+14155550134", received_at=datetime.now(UTC)
    )


async def test_a_notice_for_an_agent_held_here_goes_straight_to_its_socket() -> None:
    relay = SpyRelay()
    local, remote = uuid.uuid4(), uuid.uuid4()
    notices = AgentNotices(relay, Conversations(cast(asyncpg.Pool, None)))  # type: ignore[arg-type]  # a spy for the concrete NoticeRelay
    here = Here(local)
    notices.deliver_locally_through(here)
    conversation = uuid.uuid4()
    await notices.message(local, conversation, _sms())
    await notices.message(remote, conversation, _sms())
    assert [(agent, body["type"]) for agent, body in here.delivered] == [(local, "message")]
    assert relay.sent == [remote]


async def test_without_local_sockets_every_notice_goes_through_the_relay() -> None:
    relay = SpyRelay()
    notices = AgentNotices(relay, Conversations(cast(asyncpg.Pool, None)))  # type: ignore[arg-type]  # a spy for the concrete NoticeRelay
    agent = uuid.uuid4()
    await notices.message(agent, uuid.uuid4(), _sms())
    assert relay.sent == [agent]


class Reads(Conversations):
    """The store's offer read, counted: it answers the same context for whatever is asked."""

    def __init__(self, answer: InteractionInContext) -> None:
        self.answer = answer
        self.asked: list[uuid.UUID] = []

    async def interaction(self, interaction_id: uuid.UUID) -> InteractionInContext:
        self.asked.append(interaction_id)
        return self.answer


def _context(interaction: Interaction, queue: str) -> InteractionInContext:
    card = ClientCard(client=ClientSummary(id=uuid.uuid4(), created_at=datetime.now(UTC)), identities=[], timeline=[])
    return InteractionInContext(interaction, queue, card.model_dump_json())


def _reservation(agent: uuid.UUID, interaction: Interaction) -> Reservation:
    return Reservation(uuid.uuid4(), agent, uuid.uuid4(), uuid.uuid4(), interaction.id, expires_at_ms=0)


async def test_an_offer_of_the_interaction_just_recorded_shows_what_the_recording_read_without_reading_again() -> None:
    recorded, waiting = _sms(), _sms()
    reads = Reads(_context(waiting, "read"))
    notices = AgentNotices(SpyRelay(), reads)  # type: ignore[arg-type]  # a spy for the concrete NoticeRelay
    agent, other = uuid.uuid4(), uuid.uuid4()
    here = Here(agent, other)
    notices.deliver_locally_through(here)
    changes = LiveChanges(offers=[_reservation(agent, recorded), _reservation(other, waiting)])
    await notices.announce(changes, known=_context(recorded, "known"))
    assert reads.asked == [waiting.id], "only the offer of another interaction reads it"
    offers = {agent: cast(dict[str, Any], body["reservation"]) for agent, body in here.delivered}
    assert offers[agent]["queue"] == "known" and offers[agent]["interaction"]["id"] == str(recorded.id)
    assert offers[other]["queue"] == "read"


def test_an_offer_written_around_a_rendered_card_is_the_schema_s_offer() -> None:
    interaction = _sms()
    card = ClientCard(client=ClientSummary(id=uuid.uuid4(), created_at=datetime.now(UTC)), identities=[], timeline=[])
    reservation = OfferedReservation(
        id=uuid.uuid4(), conversation_id=uuid.uuid4(), queue="q", expires_at=datetime.now(UTC), interaction=interaction
    )
    agent = uuid.uuid4()
    written = offer_json(agent, reservation, card.model_dump_json())
    assert AGENT_NOTICE.validate_json(written) == Offer(agent_id=agent, reservation=reservation, card=card)


def test_a_gateway_reads_the_ids_a_notice_is_about_from_its_head_whatever_the_customer_wrote() -> None:
    forged_id = uuid.uuid4()
    interaction = _sms().model_copy(update={"body": f'"interaction":{{"id":"{forged_id}"}}'})
    card = ClientCard(client=ClientSummary(id=uuid.uuid4(), created_at=datetime.now(UTC)), identities=[], timeline=[])
    reservation = OfferedReservation(
        id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        queue="q" * 200,
        expires_at=datetime.now(UTC),
        interaction=interaction,
    )
    offer = offer_json(uuid.uuid4(), reservation, card.model_dump_json())
    assert notice_ids(offer) == {
        "interaction_id": str(interaction.id),
        "conversation_id": str(reservation.conversation_id),
        "reservation_id": str(reservation.id),
    }
    message = InboundMessage(
        agent_id=uuid.uuid4(), conversation_id=reservation.conversation_id, interaction=interaction
    )
    assert notice_ids(message.model_dump_json().encode()) == {
        "interaction_id": str(interaction.id),
        "conversation_id": str(reservation.conversation_id),
    }
    revoked = Revoked(agent_id=uuid.uuid4(), reservation_id=reservation.id, reason=RevokeReason.EXPIRED)
    assert notice_ids(revoked.model_dump_json().encode()) == {"reservation_id": str(reservation.id)}
