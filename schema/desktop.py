"""The agent desktop protocol on `GET /api/v1/agents/ws`, both ways: the commands a desktop sends
(`AgentCommand`) and every frame the server sends it (`ServerFrame`), so the socket's documents can be
generated from these models."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schema.api import ErrorDetail
from schema.cards import ClientCard
from schema.interactions import Channel, Interaction
from schema.offers import (
    CallNotice,
    ConversationClosed,
    CustomerClaims,
    CustomerPresence,
    InboundMessage,
    Offer,
    Revoked,
)
from schema.text import Identifier, StorableText


class AgentState(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateCommand(_Command):
    type: Literal["state"]
    state: AgentState


class AcceptCommand(_Command):
    type: Literal["accept"]
    reservation_id: uuid.UUID


class RejectCommand(_Command):
    type: Literal["reject"]
    reservation_id: uuid.UUID


class ReplyCommand(_Command):
    type: Literal["reply"]
    conversation_id: uuid.UUID
    # The bound of any interaction's body; each channel's reply sender holds replies to its own (SMS: 1,600).
    text: StorableText = Field(min_length=1, max_length=100_000)


class CompleteCommand(_Command):
    type: Literal["complete"]
    conversation_id: uuid.UUID


class TransferCommand(_Command):
    """Hand a conversation the agent accepted to a queue (its own too, for another agent): it waits there at the
    place its first arrival gave it, and an agent of the queue is offered it with the whole card."""

    type: Literal["transfer"]
    conversation_id: uuid.UUID
    queue: Identifier = Field(min_length=1, max_length=200, description="the queue's name")


class TypingCommand(_Command):
    """The agent is writing in the conversation: shown to the customer on channels with a live presence (web
    chat), ignored on others. Not answered."""

    type: Literal["typing"]
    conversation_id: uuid.UUID


AgentCommand = Annotated[
    StateCommand | AcceptCommand | RejectCommand | ReplyCommand | CompleteCommand | TransferCommand | TypingCommand,
    Field(discriminator="type"),
]
AGENT_COMMAND: TypeAdapter[AgentCommand] = TypeAdapter(AgentCommand)


class AgentView(BaseModel):
    id: uuid.UUID
    name: str


class HeldConversation(BaseModel):
    """A conversation the agent accepted and has not completed: told on every connection, so that a desktop
    coming back (or opened anew) shows the work in hand, with what arrived while it was away."""

    id: uuid.UUID
    channel: Channel
    queue: str
    opened_at: datetime
    card: ClientCard
    # Inbound and outbound, oldest first (the latest, as many as a card's timeline holds): the desktop tells
    # news from what it showed already by their ids.
    interactions: list[Interaction]


class _HelloHead(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    type: Literal["hello"] = "hello"
    agent: AgentView


class Hello(_HelloHead):
    """The first frame on the socket: who the agent is and what it holds (`[]` when nothing)."""

    conversations: list[HeldConversation]


def hello_json(agent: AgentView, conversations_json: str) -> str:
    """A `Hello` around the conversations already rendered as a JSON array (by the database: `store`
    `Conversations.held_by`), placed as they are rather than parsed and written again."""
    head = _HelloHead(agent=agent).model_dump_json()
    return f'{head[:-1]},"conversations":{conversations_json}}}'


class _Answer(BaseModel):
    """The server's answer to one command, built here and written as it is."""

    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)


class StateChanged(_Answer):
    """Answers `state`: live state now holds the agent as it asked. Also sent unasked when the agent's state moves
    without its asking: `wrap_up` after it completed work (until `until`, or until it sets a state itself: sending
    `available` is "ready"), then back to the state it had when the wrap-up time is up; or a supervisor set it."""

    type: Literal["state"] = "state"
    state: AgentState | Literal["wrap_up"]
    until: datetime | None = Field(
        default=None, exclude_if=lambda until: until is None, description="when the wrap-up ends by itself"
    )


class Accepted(_Answer):
    type: Literal["accepted"] = "accepted"
    reservation_id: uuid.UUID
    conversation_id: uuid.UUID


class Rejected(_Answer):
    type: Literal["rejected"] = "rejected"
    reservation_id: uuid.UUID


class Completed(_Answer):
    type: Literal["completed"] = "completed"
    conversation_id: uuid.UUID


class Transferred(_Answer):
    """Answers `transfer`: the conversation is no longer the agent's; it waits in the queue named."""

    type: Literal["transferred"] = "transferred"
    conversation_id: uuid.UUID
    queue: str


class Replied(_Answer):
    """Answers `reply`: the reply as sent and stored, the conversation's newest interaction."""

    type: Literal["replied"] = "replied"
    conversation_id: uuid.UUID
    interaction: Interaction


class SocketErrorDetail(ErrorDetail):
    # The socket's error is the HTTP error body's, and like it names a field only when one is at fault.
    field: str | None = Field(default=None, exclude_if=lambda field: field is None)


class ErrorFrame(_Answer):
    """A command that could not be done or did not parse, or (instead of `hello`) an agent turned away."""

    type: Literal["error"] = "error"
    error: SocketErrorDetail


# What the gateway writes itself; offers, messages and revocations come as notices (`schema.offers`).
CommandAnswer = StateChanged | Accepted | Rejected | Completed | Transferred | Replied | ErrorFrame

ServerFrame = Annotated[
    Hello
    | Offer
    | InboundMessage
    | Revoked
    | ConversationClosed
    | CustomerPresence
    | CustomerClaims
    | CallNotice
    | StateChanged
    | Accepted
    | Rejected
    | Completed
    | Transferred
    | Replied
    | ErrorFrame,
    Field(discriminator="type"),
]
SERVER_FRAME: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
