"""Live state: agents' states and capacity, queued work, reservations with timeouts — in Redis.

Every change is one atomic Lua script (`scripts/*.lua`), so several routers and gateways never book one
agent twice nor hand one piece of work to two agents. The same scripts run on a real Redis and on
`fakeredis` (with `lupa`) in embedded mode. Redis may be lost: the durable truth is PostgreSQL.

`LiveStatePort` is what routing needs of it (`state.LiveState` is the adapter), with the values it answers:
routing imports this module, never the adapter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol


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
class AgentStateMoved:
    """An agent's state that live state moved without the agent asking: its wrap-up started (`until_ms`, when it
    ends) or ended (back to the state it had)."""

    agent_id: uuid.UUID
    state: str
    until_ms: int | None = None


@dataclass(frozen=True)
class CallFreed:
    """A connected call that reached its bound (its final status never came): its agent is free again."""

    agent_id: uuid.UUID
    call_sid: str
    since_ms: int | None


@dataclass(frozen=True)
class LiveChanges:
    """What a change to live state set in motion: new reservations to offer, old ones to take back, and agents'
    states it moved (their desktops are told)."""

    offers: list[Reservation] = field(default_factory=list)
    revoked: list[Reservation] = field(default_factory=list)
    states: list[AgentStateMoved] = field(default_factory=list, kw_only=True)
    # Calls the sweep freed at their bound (their desktops are told): only `expire_reservations` fills it.
    calls_freed: list[CallFreed] = field(default_factory=list, kw_only=True)


@dataclass(frozen=True)
class Enqueued(LiveChanges):
    """What queuing a conversation's work set in motion — and, when an agent has accepted that conversation
    already, who (`held_by`): the contact being routed is news for that agent, not work for the queue."""

    held_by: uuid.UUID | None = None


@dataclass(frozen=True)
class AgentLine:
    """What an agent is busy with in live state, for a desktop that connects again: in wrap-up until when, and
    the call on its line since when (None: none)."""

    state: str
    wrap_until_ms: int | None
    call_sid: str | None
    call_since_ms: int | None


@dataclass(frozen=True)
class CallReleased(LiveChanges):
    """What a call's end set in motion — and the agent it occupied (None when it occupied nobody), since when."""

    agent_id: uuid.UUID | None = None
    since_ms: int | None = None


class LiveStatePort(Protocol):
    """Live state as the router, the reservation sweeper and live-state recovery use it. Every `now_ms` is
    `contactcenter.clock.now_ms()` in the service, set by tests."""

    async def enqueue(self, task: Task, now_ms: int, *, offer_again: bool = False) -> Enqueued:
        """Queue the conversation's work and reserve the longest-idle agent if one is free; `offer_again` offers
        a reservation made before once more (our own redelivery)."""
        ...

    async def expire_reservations(self, now_ms: int) -> LiveChanges:
        """Take back the reservations past their time (the work goes to the next agent), end the wrap-ups whose
        time is up, and free the agents of calls past their bound (`calls_freed`)."""
        ...

    async def restore(self, task: Task, enqueued_ms: int, agent_id: uuid.UUID | None, now_ms: int) -> LiveChanges:
        """Put back work Redis lost: to its agent when one holds it, else to its queue at its original place."""
        ...

    async def occupy(self, agent_id: uuid.UUID, call_sid: str, until_ms: int, now_ms: int) -> bool:
        """A call keeps the agent from work on every channel until `release`, or `until_ms` at the latest; whether
        the agent was occupied by it now."""
        ...

    async def release(self, call_sid: str, now_ms: int) -> CallReleased:
        """The call ended: its agent (if it occupied one) takes work again; the offers this made."""
        ...

    async def claim_rebuild(self, claim: str, ttl_ms: int) -> bool:
        """Whether this caller rebuilds live state now (Redis lost it and nobody else is at it)."""
        ...

    async def finish_rebuild(self) -> None: ...
