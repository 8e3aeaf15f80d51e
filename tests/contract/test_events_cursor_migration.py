"""Migration 028: the relay's cursor replaces `published_at`. On a database that had events, the cursor starts
at the last id before the first stamped event not yet published (all of them when none waits), so nothing
unpublished is passed over; what was published beyond such a gap goes out again, with its id."""

from __future__ import annotations

import json

import asyncpg
import pytest

from contactcenter.events import outbox
from contactcenter.store.migrate import migrate

# The table as migrations 010-027 left it, for the rows a database had before 028 (and the outbox's trigger
# function as 010 wrote it: migration 037's reads the cursor's table).
BEFORE_028 = """
DELETE FROM schema_migrations WHERE version = 28;
CREATE OR REPLACE FUNCTION cc_events_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cc_events', current_schema());
    RETURN NULL;
END
$$;
DROP TABLE events_relay;
ALTER TABLE events ADD COLUMN published_at timestamptz;
CREATE INDEX events_unpublished ON events (id) WHERE published_at IS NULL AND id IS NOT NULL;
"""


@pytest.mark.parametrize(
    ("published", "cursor"),
    [
        ([True, True, True, False, True, None], 3),  # a gap: 4 waits (5 goes again); 6 is not stamped yet
        ([True, True, None], 2),
        ([False, True], 0),
        ([], 0),
    ],
)
async def test_028_starts_the_cursor_before_the_first_event_not_published(
    pool: asyncpg.Pool, published: list[bool | None], cursor: int
) -> None:
    """`published`: per event in id order, whether it was published (None: not even stamped)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(BEFORE_028)
        await conn.executemany(
            "INSERT INTO events (id, type, subject, partition_key, data, published_at)"
            " VALUES ($1, 'client.created', 'c', 'client:c', $2::jsonb, CASE WHEN $3 THEN now() END)",
            [
                (n if was is not None else None, json.dumps({"client_id": "c"}), bool(was))
                for n, was in enumerate(published, 1)
            ],
        )

    assert await migrate(pool) == ["028_events_relay_cursor.sql"]

    assert await outbox.published_up_to(pool) == cursor
    assert await outbox.waiting(pool) == len(published) - cursor
