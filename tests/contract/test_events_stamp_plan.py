"""The relay's stamp finds the unstamped events by their own index (migration 039), whatever the table's size
and statistics: at the unique `id` index's NULL end it walked every stamped row's dead entry, and the planner
chose that end on a small table while another index served it better. `?after=` paging keeps `id`'s index."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from contactcenter.events import outbox
from contactcenter.store.migrate import migrate

WRITE = """
INSERT INTO events (type, subject, partition_key, data)
SELECT 'client.updated', 'c' || n, 'client:c' || n, jsonb_build_object('n', n) FROM generate_series(1, $1) AS n
"""


async def _plan(pool: asyncpg.Pool, statement: str, *args: Any) -> str:
    rows = await pool.fetch(f"EXPLAIN (FORMAT JSON) {statement}", *args)
    return json.dumps(json.loads(rows[0][0]))


def _indexes(plan: str) -> set[str]:
    return {name for name in ("events_unstamped", "events_by_id", "events_pkey") if f'"{name}"' in plan}


# Statistics taken after the rows were written, before (a log grown since the last analyse), or none.
@pytest.mark.parametrize(
    ("stamped", "unstamped", "analyzed"),
    [(0, 5, "never"), (0, 5, "after"), (20_000, 10, "before"), (20_000, 10, "after"), (20_000, 3_000, "after")],
)
async def test_the_stamp_never_reads_the_id_index_and_a_large_log_by_the_unstamped_index(
    migrated_pool: asyncpg.Pool, stamped: int, unstamped: int, analyzed: str
) -> None:
    pool = migrated_pool
    if analyzed == "before":
        await pool.execute(WRITE, 10)
        await pool.execute("ANALYZE events")
        await pool.execute("DELETE FROM events")
    if stamped:
        await pool.execute(WRITE, stamped)
        while await outbox.stamp(pool, 5_000):
            pass
    await pool.execute(WRITE, unstamped)
    if analyzed == "after":
        await pool.execute("ANALYZE events")

    found = _indexes(await _plan(pool, outbox.STAMP, 1000))
    assert "events_by_id" not in found
    if stamped:  # a handful of rows may be read whole
        assert "events_unstamped" in found
    assert len(await outbox.stamp(pool, 5_000)) == unstamped
    assert await pool.fetchval("SELECT count(*) FROM events WHERE id IS NULL") == 0


async def test_paging_after_an_id_reads_the_id_index(migrated_pool: asyncpg.Pool) -> None:
    pool = migrated_pool
    await pool.execute(WRITE, 20_000)
    while await outbox.stamp(pool, 5_000):
        pass
    await pool.execute("ANALYZE events")
    assert "events_by_id" in _indexes(await _plan(pool, outbox.PAGE, 19_900, 100))
    assert [e.id for e in await outbox.page(pool, 19_997, 10)] == [19_998, 19_999, 20_000]
    # Ids stay unique: the relay stamping one again is refused.
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute("UPDATE events SET id = 1 WHERE id = 2")


# The log as migrations 010-038 left it.
BEFORE_039 = """
DELETE FROM schema_migrations WHERE version = 39;
DROP INDEX events_by_id;
DROP INDEX events_unstamped;
ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id);
"""
PREBUILT = (
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_by_id ON events (id) WHERE id IS NOT NULL",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_unstamped ON events (seq) WHERE id IS NULL",
)
INDEXES = """
SELECT c.relname, i.indisvalid, pg_get_expr(i.indpred, i.indrelid) AS predicate FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = 'events' AND t.relnamespace = current_schema()::regnamespace
  AND c.relname IN ('events_by_id', 'events_unstamped', 'events_id_key')
"""


@pytest.mark.parametrize("prebuilt", [False, True], ids=["built-by-the-migration", "built-concurrently-before"])
async def test_039_upgrades_a_log_with_events_stamped_and_not(migrated_pool: asyncpg.Pool, prebuilt: bool) -> None:
    """As `docs/events.md` tells an operator with a large log: the indexes built concurrently first, or by the
    migration; either way the log keeps its ids and the relay stamps what waits."""
    pool = migrated_pool
    await pool.execute(BEFORE_039)
    await pool.execute(WRITE, 30)
    await outbox.stamp(pool, 20)
    if prebuilt:
        for statement in PREBUILT:
            await pool.execute(statement)  # outside a transaction, as CONCURRENTLY must be

    assert await migrate(pool) == ["039_events_unstamped_index.sql"]

    indexes = {row["relname"]: (row["indisvalid"], row["predicate"]) for row in await pool.fetch(INDEXES)}
    assert indexes == {"events_by_id": (True, "(id IS NOT NULL)"), "events_unstamped": (True, "(id IS NULL)")}
    assert [e.id for e in await outbox.stamp(pool, 100)] == list(range(21, 31))
    assert [e.id for e in await outbox.page(pool, 0, 100)] == list(range(1, 31))
