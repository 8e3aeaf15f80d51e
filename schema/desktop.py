"""Messages an agent's desktop sends on `GET /api/v1/agents/ws`, and the `hello` that greets it there."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schema.cards import ClientCard
from schema.interactions import Channel, Interaction
from schema.text import StorableText


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


AgentCommand = Annotated[
    StateCommand | AcceptCommand | RejectCommand | ReplyCommand | CompleteCommand,
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
