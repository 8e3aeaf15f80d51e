"""The in-process bus's memory on disk: messages of its shared queues written to PostgreSQL before the publish
is confirmed, deleted once handled, read back in order when the next process declares the queue.

Embedded mode only. The table is created here rather than by a numbered migration: production's queues live
in RabbitMQ, and its database has no use for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import asyncpg

from contactcenter.errors import Unavailable


@dataclass(frozen=True)
class JournalEntry:
    queue: str
    routing_key: str
    message_id: str
    body: bytes


@dataclass(frozen=True)
class JournaledMessage:
    id: int
    routing_key: str
    message_id: str
    body: bytes


class Journal(Protocol):
    async def append(self, entries: list[JournalEntry]) -> list[int]:
        """Store `entries` durably, in order; return their ids, in the same order."""

    async def settle(self, ids: list[int]) -> None:
        """Forget handled messages."""

    async def pending(self, queue: str) -> list[JournaledMessage]:
        """What `queue` holds and nobody handled yet, oldest first."""


CREATE_JOURNAL = """
CREATE TABLE IF NOT EXISTS bus_journal (
    id          bigserial PRIMARY KEY,
    queue       text  NOT NULL,
    routing_key text  NOT NULL,
    message_id  text  NOT NULL,
    body        bytea NOT NULL
)
"""

# Ids come from the sequence in the order rows are inserted, which `ORDER BY ord` fixes.
APPEND = """
INSERT INTO bus_journal (queue, routing_key, message_id, body)
SELECT queue, routing_key, message_id, body
FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY
    AS entry (queue, routing_key, message_id, body, ord)
ORDER BY ord
RETURNING id
"""

SETTLE = "DELETE FROM bus_journal WHERE id = ANY($1::bigint[])"

# Read once per queue at start-up, on a table that holds only what was in flight: no index beyond the key.
PENDING = "SELECT id, routing_key, message_id, body FROM bus_journal WHERE queue = $1 ORDER BY id"

DATABASE_FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresJournal:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, pool: asyncpg.Pool) -> PostgresJournal:
        await pool.execute(CREATE_JOURNAL)
        return cls(pool)

    async def append(self, entries: list[JournalEntry]) -> list[int]:
        try:
            rows = await self._pool.fetch(
                APPEND,
                [e.queue for e in entries],
                [e.routing_key for e in entries],
                [e.message_id for e in entries],
                [e.body for e in entries],
            )
        except DATABASE_FAILURES as exc:
            raise Unavailable(f"the bus journal cannot be written: {type(exc).__name__}") from exc
        return sorted(row["id"] for row in rows)

    async def settle(self, ids: list[int]) -> None:
        try:
            await self._pool.execute(SETTLE, ids)
        except DATABASE_FAILURES as exc:
            raise Unavailable(f"the bus journal cannot be written: {type(exc).__name__}") from exc

    async def pending(self, queue: str) -> list[JournaledMessage]:
        try:
            rows = await self._pool.fetch(PENDING, queue)
        except DATABASE_FAILURES as exc:
            raise Unavailable(f"the bus journal cannot be read: {type(exc).__name__}") from exc
        return [JournaledMessage(row["id"], row["routing_key"], row["message_id"], row["body"]) for row in rows]
