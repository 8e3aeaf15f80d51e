"""Bodies of the supervisors' API: their actions, and what the figures' document says of itself. The figures
themselves are described in docs/supervisors.md (their shape grows with the channels: per channel by name)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schema.api import QueueName
from schema.desktop import AgentState


class AgentStateChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: AgentState


class MoveWork(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: QueueName = Field(description="the queue the waiting work goes to")


class Moved(BaseModel):
    conversation_id: str
    queue: str
    previous_queue_id: str


class QueueStats(BaseModel):
    """`GET /api/v1/queues/stats`: the live figures (docs/supervisors.md gives every field and its formula)."""

    model_config = ConfigDict(extra="allow")

    queues: list[dict[str, Any]]
    overall: dict[str, Any]
    agents: list[dict[str, Any]]
    intervals: list[dict[str, Any]]
