"""The agent side: notices to agents over the bus, and the desktop WebSocket gateway.

`AgentNoticesPort` is what routing needs to tell agents (`notices.AgentNotices` is the adapter); the outbound
port, how a reply leaves on a channel, is `outbound.ReplySender`. `PlacementPort` is what the gateway needs of
routing, which implements it (`routing.placement.Placement`) and the host hands over: the gateway never
imports routing."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Protocol

from contactcenter.live import LiveChanges
from contactcenter.store import InteractionInContext
from schema import Channel, Interaction
from schema.offers import CallNotice, RevokeReason


class AgentNoticesPort(Protocol):
    """Tells agents what live state decided, wherever their sockets are."""

    async def announce(
        self,
        changes: LiveChanges,
        *,
        revoked_because: RevokeReason = RevokeReason.AGENT_UNAVAILABLE,
        known: InteractionInContext | None = None,
    ) -> None:
        """Send the revocations and offers; an offer of the interaction in `known` shows it as it is there."""
        ...

    async def message(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, interaction: Interaction) -> None:
        """A new contact in a conversation the agent holds."""
        ...


class CallNotices(AgentNoticesPort, Protocol):
    """Tells agents what live state decided, and the state of the call on their line (`notices.AgentNotices`)."""

    async def call(self, notice: CallNotice) -> None: ...


@dataclass(frozen=True)
class Arrival:
    """An inbound contact where the store put it: its conversation, the queue that serves that conversation
    (None when no queue serves its channel) and the agent who holds it (None while nobody does)."""

    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID | None
    agent_id: uuid.UUID | None


class Placement(enum.StrEnum):
    """Where a contact went: to its queue, to the agent who holds its conversation, or nowhere (no queue)."""

    QUEUED = "queued"
    TO_AGENT = "to_agent"
    UNROUTED = "unrouted"


@dataclass(frozen=True)
class Placed:
    """A contact placed: where it went, and what queuing it set in motion (offers, revocations), which the
    caller announces when it suits its own answers."""

    placement: Placement
    changes: LiveChanges


class PlacementPort(Protocol):
    """Queue a contact's work, or tell the agent who holds its conversation (`routing.policies`)."""

    async def place(
        self,
        arrival: Arrival,
        interaction: Interaction | None = None,
        *,
        tell_holder: bool = True,
        offer_again: bool = False,
    ) -> Placed:
        """Place the contact; its holder is told of `interaction` (read from the store when not given) unless
        `tell_holder` is False. `offer_again` offers a reservation made before once more (our own retry)."""
        ...


@dataclass(frozen=True)
class Withdrawn:
    """A contact taken back before any agent took it: where it waited, and the agent whose offer was revoked."""

    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    revoked_from: uuid.UUID | None


class WithdrawalPort(Protocol):
    """What a channel tells when its contact leaves before any agent took it (a caller who hung up)."""

    async def withdraw(self, channel: Channel, provider_id: str, *, abandoned: bool) -> Withdrawn | None:
        """Take the contact's work back: off its queue, a pending offer revoked (the agent is told and freed),
        its conversation closed; `abandoned` when the customer gave up (interaction.abandoned), not when it left
        for other work (a voicemail). None when no work waited for it (unknown, or an agent accepted it)."""
        ...


class AgentCallsPort(Protocol):
    """A call occupies its agent on every channel from its connection to its end (`calls.AgentCalls`)."""

    async def connected(self, agent_id: uuid.UUID, call_sid: str) -> None:
        """The call was connected to the agent: no offer of any channel reaches it until the call ends."""
        ...

    async def ended(self, call_sid: str) -> None:
        """The call's final status came: its agent (if it occupied one) takes work again. Idempotent."""
        ...


class AnswerPort(Protocol):
    """What a channel does when an agent accepts one of its contacts (a call: connect the caller to the
    agent), and when the agent hands it to another queue. Handed to the agent gateway by the host, per channel."""

    async def answered(self, agent_id: uuid.UUID, interaction: Interaction) -> None:
        """Raise `Unavailable` when the provider cannot be told: the desktop may accept again (idempotent)."""
        ...

    async def handed_off(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, queue: str) -> None:
        """The agent transfers the conversation to the queue named: undo on the provider's side what `answered`
        did (a call goes back to waiting), before the work moves. Raise `Unavailable` when the provider cannot be
        told: nothing moved, the desktop may transfer again."""
        ...
