"""Live state's events on their way to the outbox. Redis has no transaction with PostgreSQL: each Lua script
that changes what other systems are told of appends the event to the stream `<namespace>:events` in the same
atomic run (`live/scripts/_lib.lua`), and this moves the entries into the outbox, keyed by entry id, then
deletes them — so a crash anywhere loses nothing (the entry stays until it is stored) and repeats nothing (a
second move of an entry is a no-op)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis
from pydantic import ValidationError

from contactcenter.events import outbox
from contactcenter.events.outbox import MovedEvent
from schema.events import BY_NAME

log = logging.getLogger(__name__)

ENVELOPE_FIELDS = ("type", "subject", "partition", "time")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def moved_event(entry_id: str, fields: dict[str, str]) -> MovedEvent:
    """An entry as an outbox row: its data checked against the type's model, as the catalogue describes it."""
    data = {name: value for name, value in fields.items() if name not in ENVELOPE_FIELDS}
    kind = BY_NAME.get(fields["type"])
    try:
        # Written once: the model's JSON when there is a model (dumping the raw fields first was wasted).
        data_json = kind.data.model_validate(data).model_dump_json() if kind is not None else json.dumps(data)
    except ValidationError:
        # Kept as written rather than lost: the event happened; the script and the model disagree.
        log.error("an event %s from live state does not match its model", fields["type"])
        data_json = json.dumps(data)
    return MovedEvent(
        stream_id=entry_id,
        type=fields["type"],
        subject=fields["subject"],
        partition_key=fields["partition"],
        occurred_at=datetime.fromtimestamp(int(fields["time"]) / 1000, UTC),
        data_json=data_json,
    )


class LiveEventStream:
    def __init__(self, redis: aioredis.Redis, namespace: str, pool: asyncpg.Pool, *, batch: int = 1000) -> None:
        self._redis = redis
        self._key = f"{namespace}:events"
        self._pool = pool
        self._batch = batch

    async def move(self, wait_seconds: float = 0.0) -> int:
        """Move what the stream holds into the outbox (in stream order); the number of entries moved. With
        `wait_seconds`, an empty stream is waited on that long for its first entry. Each batch is one read (the
        blocking read returns the entries themselves), one insert, and its deletion — sent with the next read
        when there is more."""
        total = 0
        stored: list[str] = []  # in the outbox, to delete from the stream
        block_ms = max(1, int(wait_seconds * 1000)) if wait_seconds > 0 else None
        while True:
            entries = await self._read(stored, block_ms)
            block_ms = None
            if not entries:
                return total
            moved = [
                moved_event(entry_id, {_text(k): _text(v) for k, v in fields.items()})
                for entry_id, fields in entries
                if fields  # an entry Redis answers without fields was deleted meanwhile
            ]
            if moved:
                await outbox.move(self._pool, moved)
            stored = [entry_id for entry_id, _ in entries]
            total += len(moved)
            if len(entries) < self._batch:
                await self._redis.xdel(self._key, *stored)
                return total

    async def _read(self, stored: list[str], block_ms: int | None) -> list[tuple[str, dict[bytes | str, bytes | str]]]:
        """Delete what is stored, then read the oldest entries — one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if stored:
                pipe.xdel(self._key, *stored)
            pipe.xread({self._key: "0-0"}, count=self._batch, block=block_ms)
            *_, streams = await pipe.execute()
        if not streams:
            return []
        [(_, entries)] = streams
        return [(_text(entry_id), fields) for entry_id, fields in entries if entry_id is not None]
