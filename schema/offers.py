"""What the router and the gateway tell an agent's desktop unasked: offers (screen pops), messages, revocations.
Written here once and passed to the socket as written; `schema.desktop.ServerFrame` lists them with the rest."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schema.cards import ClientCard
from schema.interactions import Interaction


class OfferedReservation(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    queue: str
    expires_at: datetime
    interaction: Interaction


# What a notice always carries (its `type` included) is required in the documents generated from these models.
_WRITTEN_WHOLE = ConfigDict(json_schema_serialization_defaults_required=True)


class _OfferHead(BaseModel):
    model_config = _WRITTEN_WHOLE

    type: Literal["offer"] = "offer"
    agent_id: uuid.UUID
    reservation: OfferedReservation


class Offer(_OfferHead):
    """The screen pop: the reserved work and the whole card of the client behind it."""

    card: ClientCard


def offer_json(agent_id: uuid.UUID, reservation: OfferedReservation, card_json: str) -> bytes:
    """An `Offer` as JSON around a card already rendered as JSON (by the database: `store.cards`), which is
    placed as it is rather than parsed and written again."""
    head = _OfferHead(agent_id=agent_id, reservation=reservation).model_dump_json()
    return f'{head[:-1]},"card":{card_json}}}'.encode()


class InboundMessage(BaseModel):
    """A new inbound interaction in a conversation the agent has accepted."""

    model_config = _WRITTEN_WHOLE

    type: Literal["message"] = "message"
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    interaction: Interaction


class RevokeReason(StrEnum):
    # Not answered in time: the agent is set away and gets no work until it says it is available again.
    EXPIRED = "expired"
    # The agent went away or offline (or its socket closed) with the offer pending.
    AGENT_UNAVAILABLE = "agent_unavailable"
    # The contact left before the agent took it (a caller who hung up while waiting).
    WITHDRAWN = "withdrawn"
    # The contact's card was erased (`DELETE /api/v1/clients/{id}`): nobody works on it any more.
    ERASED = "erased"


class Revoked(BaseModel):
    model_config = _WRITTEN_WHOLE

    type: Literal["revoked"] = "revoked"
    agent_id: uuid.UUID
    reservation_id: uuid.UUID
    reason: RevokeReason


class ClosedReason(StrEnum):
    # The conversation's card was erased (`DELETE /api/v1/clients/{id}`): nothing of the customer is left to work on.
    ERASED = "erased"


class ConversationClosed(BaseModel):
    """A conversation the agent held was closed without it: the desktop drops it — there is nothing to complete,
    and the agent is free of it (a call on its line still occupies it until the call ends). A desktop that was
    not connected finds it gone from its next `hello`."""

    model_config = _WRITTEN_WHOLE

    type: Literal["closed"] = "closed"
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    reason: ClosedReason


class CustomerActivity(StrEnum):
    TYPING = "typing"
    # The customer ended the conversation on its side (a chat visitor's "end chat"); the agent completes it.
    ENDED = "ended"


class CustomerPresence(BaseModel):
    """What the customer does in a conversation the agent holds, on a channel with a live presence (web chat)."""

    model_config = _WRITTEN_WHOLE

    type: Literal["customer"] = "customer"
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    activity: CustomerActivity


class PossibleMatch(BaseModel):
    """A card the customer may be: never merged on this alone (a claim is no proof)."""

    client_id: uuid.UUID
    score: float = Field(ge=0, le=1)
    reasons: list[str]


class CustomerClaims(BaseModel):
    """What the customer says about itself (a chat visitor's `identify`): claims, shown beside the card, with the
    cards that hold a claimed identity as possible matches."""

    model_config = _WRITTEN_WHOLE

    type: Literal["claims"] = "claims"
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    name: str | None
    email: str | None
    # The customer proved the email (a code sent to it came back).
    email_verified: bool
    phone: str | None
    possible_matches: list[PossibleMatch]
    # The card the customer answers as now: another than the offer's once a proved email merged the customer's
    # card into the one holding it (the desktop reads it again); None before the customer's first contact.
    client_id: uuid.UUID | None


class CallState(StrEnum):
    IN_PROGRESS = "in_progress"  # connected to the agent: it occupies the agent on every channel
    ENDED = "ended"  # its final status came (or its longest time passed): the agent is free of it


class CallNotice(BaseModel):
    """The phone call on the agent's line: `in_progress` once a call is connected to the agent, `ended` when it no
    longer occupies the agent, with how long it did. Sent only to desktops that asked for calls (`?calls=true`)."""

    model_config = _WRITTEN_WHOLE

    type: Literal["call"] = "call"
    agent_id: uuid.UUID
    call_sid: str
    state: CallState
    since: datetime = Field(description="when the call was connected to the agent")
    duration_seconds: int | None = Field(description="from its connection to its end; null while in progress")


# How a call notice starts as written: a gateway passes it only to desktops that asked for calls.
CALL_NOTICE_HEAD = b'{"type":"call",'

AgentNotice = Annotated[
    Offer | InboundMessage | Revoked | ConversationClosed | CustomerPresence | CustomerClaims | CallNotice,
    Field(discriminator="type"),
]
AGENT_NOTICE: TypeAdapter[AgentNotice] = TypeAdapter(AgentNotice)


_UUID = r'"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"'
_NOTICE_IDS = {
    "interaction_id": re.compile(rb'"interaction":\{"id":' + _UUID.encode()),
    "conversation_id": re.compile(rb'"conversation_id":' + _UUID.encode()),
    "reservation_id": re.compile(rb'"reservation":\{"id":' + _UUID.encode() + rb'|"reservation_id":' + _UUID.encode()),
}
# The ids come before the interaction's body and the card in every notice (the models' field order).
_NOTICE_HEAD = 1024


_OFFER_HEAD = re.compile(
    rb'\{"type":"offer","agent_id":' + _UUID.encode() + rb',"reservation":\{"id":' + _UUID.encode()
)


def offered_reservation(body: bytes) -> str | None:
    """The reservation an offer (as written) is for; None for any other notice."""
    match = _OFFER_HEAD.match(body)
    return match.group(2).decode() if match else None


def notice_ids(body: bytes) -> dict[str, str]:
    """The interaction, conversation and reservation a notice (as written) is about, for a gateway's log line,
    found in its head without parsing the whole card. A customer's words cannot fake them: JSON escapes quotes."""
    head = body[:_NOTICE_HEAD]
    found: dict[str, str] = {}
    for name, pattern in _NOTICE_IDS.items():
        match = pattern.search(head)
        if match:
            found[name] = next(group for group in match.groups() if group).decode()
    return found
