"""The webhook dispatchers' queue is bound to the events exchange with the registered webhooks' patterns (their
types are AMQP topic patterns already), not `#`: an event no webhook wants never reaches the queue — no copy
for the broker to store, no delivery for a dispatcher to take, record nothing of and acknowledge. With no
webhook at all, events cost the webhooks nothing.

A webhook sees every event published after its registration: its patterns are bound before its row commits,
so such an event reaches the queue, and the dispatcher records it after the commit (it was published after it).
Registrations and deletions hold one lock in turn, so a deletion never unbinds a pattern a webhook being
registered at the same time needs; a pattern is unbound only once no webhook has it. A process that dies
between the two steps leaves a binding too many (events reach the queue and match nothing), never one too few.
Routers bind the patterns in use again at each scan, for a broker that came back without its bindings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contactcenter.bus import Bus, QueueSpec

LOCK = "SELECT pg_advisory_lock(hashtext('contactcenter.webhooks.bindings.' || current_schema()))"
UNLOCK = "SELECT pg_advisory_unlock(hashtext('contactcenter.webhooks.bindings.' || current_schema()))"
PATTERNS_IN_USE = "SELECT DISTINCT unnest(types) AS pattern FROM webhooks"
# What versions before the bindings followed the webhooks bound the queue with.
EVERY_EVENT = "#"


class WebhookBindings:
    def __init__(self, bus: Bus, queue: QueueSpec) -> None:
        self._bus = bus
        self._queue = queue

    @contextlib.asynccontextmanager
    async def changing(self, pool: asyncpg.Pool) -> AsyncIterator[PoolConnectionProxy]:
        """A connection holding the lock for one change of the webhooks and of the queue's bindings. A session
        lock, let go explicitly (the pool resets nothing on release), and with the connection if it breaks."""
        async with pool.acquire() as conn:
            await conn.execute(LOCK)
            try:
                yield conn
            finally:
                if not conn.is_closed():
                    await conn.execute(UNLOCK)

    async def bind(self, patterns: Sequence[str]) -> None:
        await self._bus.declare(replace(self._queue, binding_keys=tuple(patterns)))

    async def unbind_unused(self, conn: asyncpg.Connection | PoolConnectionProxy, patterns: Sequence[str]) -> None:
        """Unbind those of `patterns` no webhook has any longer (holding the lock, after the change committed)."""
        in_use = await self._patterns_in_use(conn)
        for pattern in patterns:
            if pattern not in in_use:
                await self._bus.unbind(self._queue, pattern)

    async def reconcile(self, pool: asyncpg.Pool) -> None:
        """At a dispatcher's start: every pattern in use bound (a broker that lost its bindings, a process that
        died mid-change), and the catch-all of earlier versions gone unless a webhook asks for it."""
        async with self.changing(pool) as conn:
            in_use = await self._patterns_in_use(conn)
            await self.bind(sorted(in_use))
            if EVERY_EVENT not in in_use:
                await self._bus.unbind(self._queue, EVERY_EVENT)

    async def rebind(self, pool: asyncpg.Pool) -> None:
        """Bind every pattern in use again (a dispatcher's scan): a broker that came back without its bindings
        carries webhooks' events again within a scan. No lock: this only binds, and a binding too many is
        harmless."""
        await self.bind(sorted(await self._patterns_in_use(pool)))

    @staticmethod
    async def _patterns_in_use(conn: asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool) -> set[str]:
        return {row["pattern"] for row in await conn.fetch(PATTERNS_IN_USE)}
