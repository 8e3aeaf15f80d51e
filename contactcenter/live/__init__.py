"""Live state: agents' states and capacity, queued work, reservations with timeouts — in Redis.

Every change is one atomic Lua script (`scripts/*.lua`), so several routers and gateways never book one
agent twice nor hand one piece of work to two agents. The same scripts run on a real Redis and on
`fakeredis` (with `lupa`) in embedded mode. Redis may be lost: the durable truth is PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


def now_ms() -> int:
    """Live state's clock: wall time in ms, passed into every script so tests can set it."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Task:
    """Work waiting for an agent: one per open conversation (the conversation id is the task id)."""

    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    interaction_id: uuid.UUID
    priority: int = 0


@dataclass(frozen=True)
class Reservation:
    """A task offered to one agent until it accepts, rejects, or the reservation expires."""

    id: uuid.UUID
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    interaction_id: uuid.UUID
    expires_at_ms: int


@dataclass(frozen=True)
class LiveChanges:
    """What a change to live state set in motion: new reservations to offer, old ones to take back."""

    offers: list[Reservation] = field(default_factory=list)
    revoked: list[Reservation] = field(default_factory=list)


@dataclass(frozen=True)
class Enqueued(LiveChanges):
    """What queuing a conversation's work set in motion — and, when an agent has accepted that conversation
    already, who (`held_by`): the contact being routed is news for that agent, not work for the queue."""

    held_by: uuid.UUID | None = None
