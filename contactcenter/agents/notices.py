"""Tells agents what live state decided: an offer with the whole card (the screen pop), a revocation, a new
message in an accepted conversation, a conversation closed under them (an erased card's). Notices travel
through the relay (`agents.relay`, Redis pub/sub) to whichever gateway holds the agent's socket — unless this
process holds it itself (a gateway handing out the work an agent's `complete` freed): then the notice goes
straight to the socket, without a round trip."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Protocol

from contactcenter.live import LiveChanges, Reservation
from contactcenter.logs import log_context
from contactcenter.store import InteractionInContext
from schema import Interaction, OfferedReservation
from schema.desktop import StateChanged
from schema.offers import (
    CallNotice,
    ConversationClosed,
    CustomerActivity,
    CustomerClaims,
    CustomerPresence,
    InboundMessage,
    Revoked,
    RevokeReason,
    offer_json,
)

log = logging.getLogger(__name__)


class LocalAgents(Protocol):
    async def deliver_here(self, agent_id: uuid.UUID, body: bytes) -> bool:
        """Send a notice to the agent's socket if this process holds it; False when it does not."""


class Relay(Protocol):
    """Carries a notice to whichever gateway holds the agent's socket (`agents.relay.NoticeRelay`)."""

    async def send(self, agent_id: uuid.UUID, body: bytes) -> None: ...


class InteractionReads(Protocol):
    """Reads an interaction with what its offer shows (`store.conversations.Conversations`)."""

    async def interaction(self, interaction_id: uuid.UUID) -> InteractionInContext: ...


class AgentNotices:
    def __init__(self, relay: Relay, conversations: InteractionReads) -> None:
        self._relay = relay
        self._conversations = conversations
        self._local: LocalAgents | None = None

    def deliver_locally_through(self, local: LocalAgents) -> None:
        self._local = local

    async def announce(
        self,
        changes: LiveChanges,
        *,
        revoked_because: RevokeReason = RevokeReason.AGENT_UNAVAILABLE,
        known: InteractionInContext | None = None,
    ) -> None:
        """Send the revocations and offers; an offer of the interaction in `known` shows it as it is there."""
        for revoked in changes.revoked:
            notice = Revoked(agent_id=revoked.agent_id, reservation_id=revoked.id, reason=revoked_because)
            await self._send(revoked.agent_id, notice.model_dump_json().encode())
        for moved in changes.states:
            until = datetime.fromtimestamp(moved.until_ms / 1000, UTC) if moved.until_ms is not None else None
            state = StateChanged.model_validate({"state": moved.state, "until": until})
            await self._send(moved.agent_id, state.model_dump_json().encode())
        for reservation in changes.offers:
            await self.offer(reservation, known=known)

    async def offer(self, reservation: Reservation, *, known: InteractionInContext | None = None) -> None:
        if known is not None and known.interaction.id == reservation.interaction_id:
            found = known
        else:
            found = await self._conversations.interaction(reservation.interaction_id)
        offered = OfferedReservation(
            id=reservation.id,
            conversation_id=reservation.conversation_id,
            queue=found.queue_name,
            expires_at=datetime.fromtimestamp(reservation.expires_at_ms / 1000, UTC),
            interaction=found.interaction,
        )
        body = offer_json(reservation.agent_id, offered, found.card_json)
        with log_context(
            interaction_id=reservation.interaction_id,
            conversation_id=reservation.conversation_id,
            agent_id=reservation.agent_id,
            reservation_id=reservation.id,
        ):
            await self._send(reservation.agent_id, body)
            log.info("offer sent to the agent")

    async def message(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, interaction: Interaction) -> None:
        notice = InboundMessage(agent_id=agent_id, conversation_id=conversation_id, interaction=interaction)
        with log_context(interaction_id=interaction.id, conversation_id=conversation_id, agent_id=agent_id):
            await self._send(agent_id, notice.model_dump_json().encode())
            log.info("message sent to the agent")

    async def customer(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, activity: CustomerActivity) -> None:
        """What the customer does (typing, ended) in a conversation the agent holds; missed if it is away."""
        notice = CustomerPresence(agent_id=agent_id, conversation_id=conversation_id, activity=activity)
        await self._send(agent_id, notice.model_dump_json().encode())

    async def closed(self, notice: ConversationClosed) -> None:
        """A conversation the agent held was closed without it (its card erased); missed if it is away: its next
        `hello` no longer lists it."""
        with log_context(conversation_id=notice.conversation_id, agent_id=notice.agent_id):
            await self._send(notice.agent_id, notice.model_dump_json().encode())
            log.info("the agent was told its conversation closed (%s)", notice.reason)

    async def call(self, notice: CallNotice) -> None:
        await self._send(notice.agent_id, notice.model_dump_json().encode())

    async def claims(self, notice: CustomerClaims) -> None:
        await self._send(notice.agent_id, notice.model_dump_json().encode())

    async def _send(self, agent_id: uuid.UUID, body: bytes) -> None:
        if self._local is not None and await self._local.deliver_here(agent_id, body):
            return
        # An agent with no socket open anywhere simply misses the notice; an unanswered offer expires and the
        # work goes back to the queue, and a message is among the interactions its next `hello` lists.
        await self._relay.send(agent_id, body)
