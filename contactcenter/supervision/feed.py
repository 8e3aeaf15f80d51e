"""One reader of the event log for the supervisors' watches of a whole deployment.

Every API process keeps a watch (`watch.QueueWatch`), and each one read every folded event from the log: with
two API processes PostgreSQL read each event twice, and that reading was the largest part of what events cost
the service (docs/performance.md, the twelfth session). Now the watch holding a lease in Redis reads the log;
what it folded — each batch's event-id range and its rows, a few fields each — goes to the other watches
through a short Redis stream, and they fold the same rows in the same order.

The log stays the truth: a batch says which id range it covers, and a watch that finds a gap before it (it
started after the batch before, the stream was trimmed, the reader changed) reads that part of the log itself.
When the reader stops, it gives the lease back and another takes it at its next look; when it dies, the lease
runs out first (`lease_seconds`). When Redis does not answer, every watch reads the log itself, as before.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Renew the lease if it is ours: 1, else 0.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
# Batches kept in the stream: a watch behind by more reads the log. Ten a second at most (the reader's pace).
KEPT = 64

Row = tuple[int, str, int, dict[str, str]]  # event id, type, time (ms), the fields the figures read


@dataclass(frozen=True)
class Batch:
    """Every event of a folded type with an id in (after, up_to], in id order."""

    after: int
    up_to: int
    rows: list[Row]


class WatchFeed:
    def __init__(self, redis: aioredis.Redis, namespace: str, *, lease_seconds: float) -> None:
        self._redis = redis
        self._lease = f"{namespace}:supervision:reader"
        self._stream = f"{namespace}:supervision:folded"
        self._token = uuid.uuid4().hex
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self._last_entry = "0-0"
        self._unanswered = False

    async def reads_the_log(self) -> bool:
        """Take or keep the lease; True when this watch is the one to read the log (also while Redis does not
        answer: then every watch reads it)."""
        try:
            held = await self._renew(keys=[self._lease], args=[self._token, self._lease_ms])
            if not held:
                held = await self._redis.set(self._lease, self._token, nx=True, px=self._lease_ms)
        except (RedisError, OSError) as exc:
            self._said_unanswered(exc)
            return True
        self._answered()
        return bool(held)

    async def hand_over(self, batch: Batch) -> None:
        """Give the other watches what this one read and folded."""
        body = json.dumps([batch.after, batch.up_to, batch.rows], separators=(",", ":"))
        try:
            await self._redis.xadd(self._stream, {"batch": body}, maxlen=KEPT, approximate=True)
        except (RedisError, OSError) as exc:
            self._said_unanswered(exc)  # the others find the gap and read the log

    async def handed(self) -> list[Batch]:
        """The batches handed over since the last asked for, oldest first (none while Redis does not answer)."""
        try:
            # RESP2's shape: [(stream, [(entry id, fields), …])], or nothing.
            found: Any = await self._redis.xread({self._stream: self._last_entry}, count=KEPT)
        except (RedisError, OSError) as exc:
            self._said_unanswered(exc)
            return []
        self._answered()
        batches = []
        for entry_id, fields in (entry for _stream, listed in found or () for entry in listed):
            self._last_entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            batches.append(_batch(fields))
        return batches

    async def release(self) -> None:
        try:
            await self._release(keys=[self._lease], args=[self._token])
        except (RedisError, OSError) as exc:
            log.warning("could not give back the supervisors' log reader lease: %s", exc)

    def _said_unanswered(self, exc: BaseException) -> None:
        if not self._unanswered:
            log.warning("Redis did not answer the supervisors' watch (%s): it reads the event log itself", exc)
        self._unanswered = True

    def _answered(self) -> None:
        if self._unanswered:
            log.warning("Redis answers the supervisors' watch again")
        self._unanswered = False


def _batch(fields: dict[Any, Any]) -> Batch:
    """An entry's batch, its fields as bytes or as text (as the client is told to decode)."""
    body: bytes | str = fields.get(b"batch", fields.get("batch", "[0, 0, []]"))
    after, up_to, rows = json.loads(body)
    return Batch(int(after), int(up_to), [(int(i), str(t), int(ms), dict(data)) for i, t, ms, data in rows])


def rows_after(batch: Batch, folded_up_to: int) -> Sequence[Row]:
    """The batch's rows a watch that folded every event up to `folded_up_to` has not folded."""
    return [row for row in batch.rows if row[0] > folded_up_to]
