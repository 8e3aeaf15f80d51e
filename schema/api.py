"""Bodies of the admin and client API (`/api/v1`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schema.interactions import Channel
from schema.text import DisplayName

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
QueueName = Annotated[str, Field(pattern=NAME_PATTERN, description="lowercase letters, digits, '-' and '_'")]
# An agent works a handful of queues; the bound keeps a body (and the error naming unknown ones) small.
MAX_QUEUES_PER_AGENT = 100


class QueueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: QueueName
    channels: list[Channel] = Field(min_length=1)
    service_level_seconds: int = Field(
        default=20, ge=1, le=86400, description="the service level's target: answered within this many seconds"
    )
    service_level_goal: float = Field(
        default=0.8, ge=0.01, le=1, description="the share of contacts to answer within the target (0.01-1)"
    )
    wrap_up_seconds: int | None = Field(
        default=None,
        strict=True,  # a JSON number of seconds: not true, not "10"
        ge=0,
        le=3600,
        description="after completing a contact of this queue the agent is in wrap-up this long (0-3600; 0: none); "
        "null: the service's CC_WRAP_UP_SECONDS",
    )


class QueueCreated(BaseModel):
    id: uuid.UUID
    name: str
    channels: list[Channel]
    service_level_seconds: int = 20
    service_level_goal: float = 0.8
    wrap_up_seconds: int | None = None


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DisplayName = Field(min_length=1, max_length=200)
    queues: list[QueueName] = Field(min_length=1, max_length=MAX_QUEUES_PER_AGENT)


class AgentCreated(BaseModel):
    id: uuid.UUID
    name: str
    queues: list[str]
    token: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    client_id: uuid.UUID | None = Field(
        default=None,
        description="a 409 about another client's card names it (an identity it holds)",
        exclude_if=lambda client_id: client_id is None,
    )


class ErrorBody(BaseModel):
    error: ErrorDetail
