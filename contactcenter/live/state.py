"""Live state on Redis: each change one atomic Lua script from `scripts/` (with `_lib.lua` prepended).

Changes that arrive while others are on the wire go to Redis together, as one pipeline of EVALSHA calls
(`batching.Batcher`): each script stays atomic on its own, and under load a round trip carries many. A
script Redis does not know (a restarted Redis) is loaded and its calls run again.
Time is passed in (`now_ms`), so tests control the clock and every router agrees on it with its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from contactcenter.batching import Batcher
from contactcenter.errors import Conflict, NotFound
from contactcenter.live import (
    AgentLine,
    AgentStateMoved,
    CallFreed,
    CallReleased,
    Enqueued,
    LiveChanges,
    Reservation,
    Task,
)

EXPIRE_BATCH = 100
# Pipelines in flight at once: a call finding one free goes out alone, at once; the rest wait together.
LANES = 1

ScriptCall = tuple[str, list[str | int]]


def _load(name: str) -> str:
    folder = resources.files("contactcenter.live") / "scripts"
    return (folder / "_lib.lua").read_text("utf-8") + "\n" + (folder / f"{name}.lua").read_text("utf-8")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _reservations(rows: list[list[bytes]]) -> list[Reservation]:
    return [
        Reservation(
            id=uuid.UUID(_text(r)),
            agent_id=uuid.UUID(_text(a)),
            conversation_id=uuid.UUID(_text(c)),
            queue_id=uuid.UUID(_text(q)),
            interaction_id=uuid.UUID(_text(i)),
            expires_at_ms=int(_text(expires)),
        )
        for r, a, c, q, i, expires in rows
    ]


def _states(rows: list[list[bytes]]) -> list[AgentStateMoved]:
    return [
        AgentStateMoved(uuid.UUID(_text(a)), _text(state), int(_text(until)) if _text(until) else None)
        for a, state, until in rows
    ]


@dataclass(frozen=True)
class AgentStatus:
    state: str
    load: int
    capacity: int


@dataclass(frozen=True)
class Withdrawal:
    found: bool
    taken: bool
    changes: LiveChanges


class LiveState:
    def __init__(self, redis: aioredis.Redis, *, namespace: str, reservation_ttl_ms: int, events: bool = True) -> None:
        self._redis = redis
        self._events = "1" if events else "0"
        self._prefix = f"{namespace}:"
        self._ttl_ms = reservation_ttl_ms
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(_load(name))
            for name in (
                "enqueue",
                "agent_state",
                "accept",
                "reject",
                "complete",
                "expire",
                "restore",
                "withdraw",
                "move",
                "transfer",
                "occupy",
                "release",
            )
        }
        self._batcher: Batcher[ScriptCall, Any] = Batcher(self._run_scripts, lanes=LANES)

    async def _run(self, name: str, now_ms: int, *args: str | int) -> tuple[str, LiveChanges, list[Any]]:
        argv: list[str | int] = [self._prefix, now_ms, self._ttl_ms, str(uuid.uuid4()), self._events, *args]
        status, offers, revoked, extra, states = await self._batcher.call((name, argv))
        return _text(status), LiveChanges(_reservations(offers), _reservations(revoked), states=_states(states)), extra

    async def _run_scripts(self, calls: list[ScriptCall]) -> list[Any]:
        results = await self._pipeline(calls)
        refused = [n for n, result in enumerate(results) if isinstance(result, NoScriptError)]
        if refused:
            # A restarted Redis forgot the scripts: load them, and run what it refused once more.
            for script in self._scripts.values():
                await self._redis.script_load(script.script)
            for n, result in zip(refused, await self._pipeline([calls[n] for n in refused]), strict=True):
                results[n] = result
        return results

    async def _pipeline(self, calls: list[ScriptCall]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, argv in calls:
                pipe.evalsha(self._scripts[name].sha, 0, *argv)
            return list(await pipe.execute(raise_on_error=False))

    async def enqueue(self, task: Task, now_ms: int, *, offer_again: bool = False) -> Enqueued:
        """Queue a conversation's work (once: again is a no-op) and reserve an agent if one is free.

        `offer_again` (a redelivery): a task already reserved answers its pending reservation as an offer once
        more, since the attempt that reserved it may have failed before telling the agent. A task an agent has
        accepted answers that agent (`held_by`)."""
        _, changes, extra = await self._run(
            "enqueue",
            now_ms,
            str(task.conversation_id),
            str(task.queue_id),
            str(task.interaction_id),
            task.priority,
            int(offer_again),
        )
        held_by = uuid.UUID(_text(extra[0])) if extra else None
        return Enqueued(changes.offers, changes.revoked, held_by)

    async def set_agent_state(
        self, agent_id: uuid.UUID, state: str, queue_ids: list[uuid.UUID], now_ms: int, capacity: int = 1
    ) -> LiveChanges:
        queues = ",".join(str(q) for q in queue_ids)
        _, changes, _ = await self._run("agent_state", now_ms, str(agent_id), str(state), capacity, queues)
        return changes

    async def accept(self, agent_id: uuid.UUID, reservation_id: uuid.UUID, now_ms: int) -> Reservation:
        """The reservation becomes an assignment. NotFound when it is not this agent's; Conflict when it has
        expired (it is then revoked and its work goes back to the queue) or was revoked from this agent."""
        status, _, extra = await self._run("accept", now_ms, str(agent_id), str(reservation_id))
        if status == "not_found":
            raise NotFound(f"no pending reservation {reservation_id} for you", field="reservation_id")
        if status == "expired":
            raise Conflict(f"reservation {reservation_id} has expired or was revoked", field="reservation_id")
        conversation, queue, interaction, expires = (_text(value) for value in extra)
        return Reservation(
            id=reservation_id,
            agent_id=agent_id,
            conversation_id=uuid.UUID(conversation),
            queue_id=uuid.UUID(queue),
            interaction_id=uuid.UUID(interaction),
            expires_at_ms=int(expires),
        )

    async def reject(self, agent_id: uuid.UUID, reservation_id: uuid.UUID, now_ms: int) -> LiveChanges:
        status, changes, _ = await self._run("reject", now_ms, str(agent_id), str(reservation_id))
        if status == "not_found":
            raise NotFound(f"no pending reservation {reservation_id} for you", field="reservation_id")
        return changes

    async def complete(
        self, agent_id: uuid.UUID, conversation_id: uuid.UUID, now_ms: int, *, worked: bool = True, wrap_up_ms: int = 0
    ) -> LiveChanges:
        """The agent is done with the conversation; with `wrap_up_ms` (and worked) it is in wrap-up that long —
        offered nothing — unless it sets a state itself first (`changes.states` tells when it ends)."""
        status, changes, _ = await self._run(
            "complete", now_ms, str(agent_id), str(conversation_id), int(worked), wrap_up_ms
        )
        if status == "not_found":
            raise NotFound(f"conversation {conversation_id} is not assigned to you", field="conversation_id")
        return changes

    async def withdraw(
        self,
        conversation_id: uuid.UUID,
        now_ms: int,
        *,
        abandoned: bool,
        interaction_id: uuid.UUID | None = None,
        queue_id: uuid.UUID | None = None,
    ) -> Withdrawal:
        """Take back the work of a contact that left before any agent took it (`abandoned`: a caller who hung up
        while waiting; else one who left for voicemail): off its queue, its pending offer revoked. `taken` when
        an agent had accepted it already (then nothing changes), `found` False when no work waited for it. The
        conversation is queued nowhere afterwards: a router that recorded the contact before it left queues
        nothing (its interaction and queue, when given, name it in the abandon's event)."""
        status, changes, _ = await self._run(
            "withdraw",
            now_ms,
            str(conversation_id),
            int(abandoned),
            "" if interaction_id is None else str(interaction_id),
            "" if queue_id is None else str(queue_id),
        )
        return Withdrawal(found=status != "not_found", taken=status == "assigned", changes=changes)

    async def move(self, conversation_id: uuid.UUID, queue_id: uuid.UUID, now_ms: int) -> tuple[uuid.UUID, LiveChanges]:
        """Move a conversation's waiting work to another queue (taking back its offer if it has one); the queue
        it left. NotFound when no work of it waits, Conflict when an agent has accepted it or it is there."""
        status, changes, extra = await self._run("move", now_ms, str(conversation_id), str(queue_id))
        if status == "not_found":
            raise NotFound(f"no work of conversation {conversation_id} waits", field="conversation_id")
        if status == "assigned":
            raise Conflict(
                "an agent has accepted this conversation already: it no longer waits", field="conversation_id"
            )
        if status == "same":
            raise Conflict("the conversation waits in that queue already", field="queue")
        return uuid.UUID(_text(extra[0])), changes

    async def transfer(
        self, agent_id: uuid.UUID, conversation_id: uuid.UUID, queue_id: uuid.UUID, now_ms: int
    ) -> tuple[uuid.UUID, LiveChanges]:
        """The agent hands the conversation it accepted to a queue, where it waits at its first arrival's place;
        the agent is free at once (no wrap-up). The queue it was in. NotFound when the agent does not hold it."""
        status, changes, extra = await self._run("transfer", now_ms, str(agent_id), str(conversation_id), str(queue_id))
        if status == "not_found":
            raise NotFound(f"conversation {conversation_id} is not assigned to you", field="conversation_id")
        return uuid.UUID(_text(extra[0])), changes

    async def occupy(self, agent_id: uuid.UUID, call_sid: str, until_ms: int, now_ms: int) -> bool:
        """A call was connected to the agent: it takes no work on any channel until `release` (the call's final
        status) or `until_ms` (its bound, should that status never come: the sweep frees it). True when the call
        is new to the agent (False: it was on it already, and only its bound moved)."""
        status, _, _ = await self._run("occupy", now_ms, str(agent_id), call_sid, until_ms)
        return status == "ok"

    async def release(self, call_sid: str, now_ms: int) -> CallReleased:
        """The call ended: the agent it occupied is free for work, and the offers this made are returned."""
        _, changes, extra = await self._run("release", now_ms, call_sid)
        agent, since = (_text(value) for value in extra) if extra else ("", "")
        return CallReleased(
            changes.offers,
            changes.revoked,
            uuid.UUID(agent) if agent else None,
            int(since) if since else None,
            states=changes.states,
        )

    async def task_queue(self, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The queue a conversation's work is in, if any."""
        # Cast: redis-py 7 and 8 type the asyncio client's replies differently.
        queue = await cast("Awaitable[Any]", self._redis.hget(f"{self._prefix}task:{conversation_id}", "queue"))
        return uuid.UUID(_text(queue)) if queue else None

    async def expire_reservations(self, now_ms: int) -> LiveChanges:
        _, changes, extra = await self._run("expire", now_ms, EXPIRE_BATCH)
        freed = [
            CallFreed(
                uuid.UUID(_text(extra[n])), _text(extra[n + 1]), int(_text(extra[n + 2])) if extra[n + 2] else None
            )
            for n in range(0, len(extra), 3)
        ]
        return LiveChanges(changes.offers, changes.revoked, states=changes.states, calls_freed=freed)

    async def restore(self, task: Task, enqueued_ms: int, agent_id: uuid.UUID | None, now_ms: int) -> LiveChanges:
        """Put an open conversation back after Redis lost live state: assigned to its agent, or queued."""
        _, changes, _ = await self._run(
            "restore",
            now_ms,
            str(task.conversation_id),
            str(task.queue_id),
            str(task.interaction_id),
            enqueued_ms,
            str(agent_id) if agent_id else "",
        )
        return changes

    async def claim_rebuild(self, claim: str, ttl_ms: int) -> bool:
        """True when live state is missing (a new or restarted Redis) and this caller may rebuild it; the
        claim is the marker, so only one router rebuilds and the rest see live state as present. Each claim
        names itself anew: the name tells gateways that a rebuild happened since they last looked."""
        claimed = await self._redis.set(f"{self._prefix}live", claim, nx=True, px=ttl_ms)
        return bool(claimed)

    async def finish_rebuild(self) -> None:
        await self._redis.persist(f"{self._prefix}live")

    async def rebuilt(self) -> str | None:
        """The claim of the rebuild that made live state whole, or None while it is missing or being rebuilt."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(f"{self._prefix}live")
            pipe.pttl(f"{self._prefix}live")
            claim, ttl = await pipe.execute()
        return _text(claim) if claim is not None and ttl == -1 else None

    async def queue_length(self, queue_id: uuid.UUID) -> int:
        length: int = await self._redis.zcard(f"{self._prefix}queue:{queue_id}:tasks")
        return length

    async def queue_lengths(self, queue_ids: list[uuid.UUID]) -> list[int]:
        """Many queues' lengths in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue_id in queue_ids:
                pipe.zcard(f"{self._prefix}queue:{queue_id}:tasks")
            return [int(length) for length in await pipe.execute()]

    async def agent_status(self, agent_id: uuid.UUID) -> AgentStatus:
        return (await self.agent_statuses([agent_id]))[0]

    async def agent_line(self, agent_id: uuid.UUID) -> AgentLine:
        """The agent's wrap-up and call, as live state holds them (one read)."""
        state, wrap_until, call, call_since = await cast(
            "Awaitable[list[Any]]",
            self._redis.hmget(f"{self._prefix}agent:{agent_id}", ["state", "wrap_until", "call", "call_since"]),
        )
        return AgentLine(
            state=_text(state) if state else "offline",
            wrap_until_ms=int(wrap_until) if wrap_until else None,
            call_sid=_text(call) if call else None,
            call_since_ms=int(call_since) if call_since else None,
        )

    async def agent_statuses(self, agent_ids: list[uuid.UUID]) -> list[AgentStatus]:
        """Many agents' states in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.hmget(f"{self._prefix}agent:{agent_id}", ["state", "load", "capacity"])
            rows = await pipe.execute()
        return [
            AgentStatus(state=_text(state) if state else "offline", load=int(load or 0), capacity=int(capacity or 1))
            for state, load, capacity in rows
        ]
