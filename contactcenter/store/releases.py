"""Conversations the database closed whose work live state may still hold (`live_releases`, migration 038: an
erased card's): read in the transaction that closed them by the process that did, or by a router's sweep once
they are overdue — that process died before taking their work back from Redis."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# The releases of a card (and the cards merged into it): what its erasure just wrote, in the same transaction.
OF_CARD = """
SELECT r.conversation_id, r.agent_id, r.reason FROM live_releases r
JOIN conversations v ON v.id = r.conversation_id
WHERE v.client_id = ANY (cc_card_members($1))
"""
# Releases older than `$1` seconds, oldest first, a bounded batch; rows another router is releasing are skipped
# (index: live_releases_by_time).
OVERDUE = """
SELECT conversation_id, agent_id, reason FROM live_releases
WHERE closed_at < now() - make_interval(secs => $1)
ORDER BY closed_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
DONE = "DELETE FROM live_releases WHERE conversation_id = ANY ($1::uuid[])"


@dataclass(frozen=True)
class LiveRelease:
    conversation_id: uuid.UUID
    agent_id: uuid.UUID | None  # the agent who held it; None: it waited for one
    reason: str  # why the database closed it: `erased`


def _releases(rows: Sequence[asyncpg.Record]) -> list[LiveRelease]:
    return [LiveRelease(row["conversation_id"], row["agent_id"], row["reason"]) for row in rows]


async def releases_of_card(conn: asyncpg.Connection | PoolConnectionProxy, root: uuid.UUID) -> list[LiveRelease]:
    """On the connection of the transaction that wrote them."""
    return _releases(await conn.fetch(OF_CARD, root))


class PendingReleases:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def done(self, conversation_ids: Sequence[uuid.UUID]) -> None:
        if conversation_ids:
            await self._pool.execute(DONE, list(conversation_ids))

    @contextlib.asynccontextmanager
    async def overdue(self, seconds: float, batch: int) -> AsyncIterator[list[LiveRelease]]:
        """The releases older than `seconds`, locked while the caller takes their work back; deleted when it is
        done, left for the next sweep when it fails."""
        async with self._pool.acquire() as conn, conn.transaction():
            releases = _releases(await conn.fetch(OVERDUE, seconds, batch))
            yield releases
            if releases:
                await conn.execute(DONE, [release.conversation_id for release in releases])
