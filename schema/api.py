"""Bodies of the admin and client API (`/api/v1`)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from schema.interactions import Channel

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class QueueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="lowercase letters, digits, '-' and '_'")
    channels: list[Channel] = Field(min_length=1)


class QueueCreated(BaseModel):
    id: uuid.UUID
    name: str
    channels: list[Channel]


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    queues: list[str] = Field(min_length=1)


class AgentCreated(BaseModel):
    id: uuid.UUID
    name: str
    queues: list[str]
    token: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
