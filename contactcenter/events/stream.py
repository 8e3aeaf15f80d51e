"""Live state's events on their way to the outbox. Redis has no transaction with PostgreSQL: each Lua script
that changes what other systems are told of appends the event to the stream `<namespace>:events` in the same
atomic run (`live/scripts/_lib.lua`), and the publishing relay moves the entries into the outbox, keyed by entry
id and given their public ids as they are written, then deletes them — so a crash anywhere loses nothing (the
entry stays until it is stored) and repeats nothing (a second move of an entry is a no-op)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import redis.asyncio as aioredis
from pydantic import ValidationError

from contactcenter.events import outbox
from contactcenter.events.outbox import MovedEvent, StoredEvent
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
    def __init__(self, redis: aioredis.Redis, namespace: str, *, batch: int = 1000) -> None:
        self._redis = redis
        self._key = f"{namespace}:events"
        self._batch = batch
        self._moved: list[str] = []  # in the outbox, to delete from the stream with the next read

    async def move(self, conn: outbox.Runner, limit: int) -> list[StoredEvent]:
        """Move up to `limit` of the stream's oldest entries into the outbox, in stream order, with their ids —
        only the relay holding the publishing lock, on its connection; the events written, in id order. One read
        (which deletes the entries moved before) and one insert; the entries are deleted with the next read, or
        at once when the stream held no more."""
        count = min(limit, self._batch)
        entries = await self._read(self._moved, count)
        self._moved = []
        if not entries:
            return []
        moved = [
            moved_event(entry_id, {_text(k): _text(v) for k, v in fields.items()})
            for entry_id, fields in entries
            if fields  # an entry Redis answers without fields was deleted meanwhile
        ]
        written = await outbox.move(conn, moved) if moved else []
        read = [entry_id for entry_id, _ in entries]
        if len(entries) < count:
            await self._redis.xdel(self._key, *read)
        else:
            self._moved = read
        return written

    async def arrived(self, wait_seconds: float) -> bool:
        """Whether the stream holds an entry, waiting up to `wait_seconds` for the first."""
        streams = await self._redis.xread({self._key: "0-0"}, count=1, block=max(1, int(wait_seconds * 1000)))
        return bool(streams)

    async def _read(self, moved: list[str], count: int) -> list[tuple[str, dict[bytes | str, bytes | str]]]:
        """Delete what is in the outbox, then read the oldest entries — one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            if moved:
                pipe.xdel(self._key, *moved)
            pipe.xread({self._key: "0-0"}, count=count)
            *_, streams = await pipe.execute()
        if not streams:
            return []
        [(_, entries)] = streams
        return [(_text(entry_id), fields) for entry_id, fields in entries if entry_id is not None]
