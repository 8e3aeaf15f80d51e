"""The outbound ports: how an agent's reply leaves on the conversation's own channel (`ReplySender`; channels
implement it — `channels.twilio.rest` for SMS — and the app assembly hands each channel's senders to
`agents.replies`), and, on channels with a live presence, what each side sees of the other: the agent's
activity shown to the customer (`ConversationParty`), the customer's told to the agent (`CustomerPresencePort`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from contactcenter.errors import Invalid, Unavailable
from schema import Channel, IdentityKind
from schema.offers import CustomerActivity


@dataclass(frozen=True)
class OutboundMessage:
    to_address: str
    from_address: str
    body: str
    # The provider's id of the customer's latest message in the conversation: a channel that threads (mail)
    # answers it.
    in_reply_to: str = ""


class ReplyRefused(Invalid):
    """The provider refused the reply for good (a relay's 5xx): `provider_id` names what was tried, and the
    reply goes on the timeline marked not sent."""

    def __init__(self, message: str, *, provider_id: str) -> None:
        super().__init__(message, field="text")
        self.provider_id = provider_id


class ReplyNotTaken(Unavailable):
    """The provider did not take the reply after its tries (down, or refusing for now): as `ReplyRefused`, the
    agent may send it again."""

    def __init__(self, message: str, *, provider_id: str) -> None:
        super().__init__(message)
        self.provider_id = provider_id


class ReplySender(Protocol):
    """Sends replies on one channel, which sets their bounds: the desktop's own bound is only the body's."""

    # The longest reply the channel carries, in characters (SMS: 1,600); a longer one is refused naming `text`.
    max_length: int
    # What kind of identity an address on the channel is (ours, the customer's): a reply's `sender_kind`.
    address_kind: IdentityKind

    async def send(self, message: OutboundMessage) -> str:
        """Hand the message to the provider; return the provider's id for it. Raise `Invalid` naming `text`
        for a body past `max_length` (before any provider hears of it), `Unavailable` when the provider cannot
        be reached, `Invalid` when it refuses the message. A channel that names what it tried (mail's
        Message-ID) raises `ReplyNotTaken` / `ReplyRefused` instead: the reply is then on the timeline, marked
        not sent."""


@dataclass(frozen=True)
class Claims:
    """What a customer says about itself, normalised (email lower-cased, phone E.164)."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    # The customer proved the email is its own (a code sent to it came back): still not merged on its own.
    email_verified: bool = False


class AgentActivity(StrEnum):
    JOINED = "joined"
    LEFT = "left"
    TYPING = "typing"


class ConversationParty(Protocol):
    """On a channel with a live presence (web chat), what the customer is shown of the agent: joined (accepted
    the conversation), left (completed it), typing. Channels implement it beside their `ReplySender`."""

    async def agent_activity(self, client_address: str, activity: AgentActivity, agent_name: str) -> None: ...


class CustomerPresencePort(Protocol):
    """What the host lends such a channel to tell the agent who holds the customer's open conversation what the
    customer does (`agents.presence.AgentPresence`)."""

    async def customer_activity(
        self, kind: IdentityKind, address: str, channel: Channel, activity: CustomerActivity
    ) -> None:
        """Tell the agents holding the customer's open conversations on `channel`; nobody when none does."""

    async def customer_claims(self, kind: IdentityKind, address: str, channel: Channel, claims: Claims) -> None:
        """Show those agents what the customer says it is, with the cards holding a claimed identity (never
        merged: a claim is no proof)."""


class StaffingPort(Protocol):
    """Whether an agent is there to answer a channel now (`agents.staffing.Staffing`)."""

    async def agents_available(self, channel: Channel) -> bool: ...
