"""The outbox and event log in PostgreSQL (migrations 010 and 028): what the relay stamps and publishes, what a
consumer pages through, what the retention job deletes. Rows are written by the changes themselves (stamped by
the relay) and by the relay moving live state's stream (with their ids); what is published is every event with
an id up to the relay's cursor (`events_relay`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from schema.events import BY_NAME, SOURCE, TYPE_PREFIX, CloudEvent

# Public ids for the committed rows that have none, in the order they were written, and the rows so stamped (in
# no particular order: `stamp` sorts them). Only the relay holding the publishing lock runs it: the ids it gives
# only grow, so `?after=` never passes over a row, and a round's events are all past the ones before it.
# `nextval` runs as the ordered subquery's rows come (no ORDER BY after it, which could sort after numbering).
# The unstamped rows are found by their own index, `events_unstamped` (migration 039).
STAMP = """
UPDATE events e SET id = s.id
FROM (SELECT seq, nextval('events_public_id') AS id
      FROM (SELECT seq FROM events WHERE id IS NULL ORDER BY seq LIMIT $1) o) s
WHERE e.seq = s.seq
RETURNING e.id, e.type, e.subject, e.partition_key, e.occurred_at, e.data::text AS data
"""
PUBLISHED_UP_TO = "SELECT published_up_to FROM events_relay"
# Only forward: a relay that lost its lock mid-round cannot move it back over what another published since.
ADVANCE = "UPDATE events_relay SET published_up_to = $1 WHERE published_up_to < $1"
WAITING = "SELECT count(*) FROM events WHERE id IS NULL OR id > (SELECT published_up_to FROM events_relay)"
PAGE = """
SELECT id, type, subject, partition_key, occurred_at, data::text AS data FROM events
WHERE id > $1 ORDER BY id LIMIT $2
"""
# Entries of live state's stream (contactcenter/events/stream.py), written by the publishing relay with their ids,
# in stream order, after its stamp: every committed event then has a smaller id, and ids only grow as the stamp's
# do — so the row is written once, never stamped (a second write of the row, an entry in each of its indexes).
# A move repeated after a crash adds nothing (the entry id is unique); the id it took is skipped.
MOVE = """
INSERT INTO events (id, type, subject, partition_key, occurred_at, data, stream_id)
SELECT nextval('events_public_id'), o.type, o.subject, o.partition_key, o.occurred_at, o.data::jsonb, o.stream_id
FROM (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[])
          WITH ORDINALITY AS m(type, subject, partition_key, occurred_at, data, stream_id, n)
      ORDER BY m.n) o
ON CONFLICT (stream_id) WHERE stream_id IS NOT NULL DO NOTHING
RETURNING id, type, subject, partition_key, occurred_at, data::text AS data
"""
# Published events older than the retention, a bounded batch at a time (`events.retention` runs it again for the
# rest); rows another process is deleting are skipped, not waited for.
FORGET = """
DELETE FROM events WHERE seq IN (
    SELECT seq FROM events
    WHERE occurred_at < now() - make_interval(days => $1) AND id <= (SELECT published_up_to FROM events_relay)
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
"""


@dataclass(frozen=True)
class StoredEvent:
    id: int
    type: str  # without the prefix: the routing key
    subject: str
    partition_key: str
    occurred_at: datetime
    data_json: str

    def envelope(self) -> CloudEvent[object]:
        kind = BY_NAME.get(self.type)
        return CloudEvent[object](
            id=str(self.id),
            type=TYPE_PREFIX + self.type,
            subject=self.subject,
            time=self.occurred_at,
            dataschema=kind.dataschema if kind else None,
            partitionkey=self.partition_key,
            sequence=f"{self.id:020d}",
            data=json.loads(self.data_json),
        )

    def body(self) -> bytes:
        """The CloudEvent in structured JSON, as published: `envelope()`'s, written around the data as
        PostgreSQL gave it and a head kept per type — the relay writes thousands a second, and a model per
        event was a tenth of its time, a dictionary dumped per event a twentieth."""
        return (
            f'{{"specversion":"1.0","id":"{self.id}",{_type_head(self.type)},"subject":{_json_string(self.subject)},'
            f'"time":"{self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")}",'
            f'"datacontenttype":"application/json","dataschema":{_dataschema(self.type)},'
            f'"partitionkey":{_json_string(self.partition_key)},"sequence":"{self.id:020d}","data":{self.data_json}}}'
        ).encode()


_json_string = json.JSONEncoder().encode  # as `json.dumps` writes a string (ASCII, escaped)


@functools.cache
def _type_head(kind: str) -> str:
    return f'"source":{_json_string(SOURCE)},"type":{_json_string(TYPE_PREFIX + kind)}'


@functools.cache
def _dataschema(kind: str) -> str:
    known = BY_NAME.get(kind)
    return _json_string(known.dataschema) if known else "null"


@dataclass(frozen=True)
class MovedEvent:
    """An event from live state's stream, on its way into the outbox."""

    stream_id: str
    type: str
    subject: str
    partition_key: str
    occurred_at: datetime
    data_json: str


def _stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(row["id"], row["type"], row["subject"], row["partition_key"], row["occurred_at"], row["data"])


# Each statement runs on the connection given: the relay keeps one of its own, the API uses the pool.
Runner = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool


async def stamp(conn: Runner, limit: int) -> list[StoredEvent]:
    """Give up to `limit` committed events their ids; those events, in id order."""
    return sorted((_stored(row) for row in await conn.fetch(STAMP, limit)), key=lambda event: event.id)


async def published_up_to(conn: Runner) -> int:
    """The relay's cursor: every event up to this id is published."""
    up_to: int = await conn.fetchval(PUBLISHED_UP_TO)
    return up_to


async def advance(conn: Runner, published: int) -> None:
    """Every event up to `published` is published."""
    await conn.execute(ADVANCE, published)


async def waiting(conn: Runner) -> int:
    """How many committed events are not yet published (stamped or not)."""
    count: int = await conn.fetchval(WAITING)
    return count


async def page(conn: Runner, after: int, limit: int) -> list[StoredEvent]:
    return [_stored(row) for row in await conn.fetch(PAGE, after, limit)]


async def move(conn: Runner, moved: Sequence[MovedEvent]) -> list[StoredEvent]:
    """Write live state's events with their ids (only the relay holding the publishing lock); those written now,
    in id order (an entry moved before is not written again)."""
    rows = await conn.fetch(
        MOVE,
        [m.type for m in moved],
        [m.subject for m in moved],
        [m.partition_key for m in moved],
        [m.occurred_at for m in moved],
        [m.data_json for m in moved],
        [m.stream_id for m in moved],
    )
    return sorted((_stored(row) for row in rows), key=lambda event: event.id)


async def forget_older_than(conn: Runner, days: int, batch: int) -> int:
    """Delete up to `batch` published events older than `days`; how many."""
    status: str = await conn.execute(FORGET, days, batch)
    return int(status.split()[-1])
