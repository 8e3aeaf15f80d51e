"""Messages an agent's desktop sends on `GET /api/v1/agents/ws`."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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
    text: StorableText = Field(min_length=1, max_length=1600)


class CompleteCommand(_Command):
    type: Literal["complete"]
    conversation_id: uuid.UUID


AgentCommand = Annotated[
    StateCommand | AcceptCommand | RejectCommand | ReplyCommand | CompleteCommand,
    Field(discriminator="type"),
]
AGENT_COMMAND: TypeAdapter[AgentCommand] = TypeAdapter(AgentCommand)
