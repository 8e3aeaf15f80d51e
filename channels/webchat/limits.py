"""How many frames a visitor may send: a token bucket per visitor, in the process that holds its sockets."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class FrameRate:
    def __init__(self, per_minute: int, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._buckets: dict[uuid.UUID, _Bucket] = {}

    def take(self, visitor_id: uuid.UUID) -> bool:
        """One frame more from the visitor: False when it is over its rate."""
        now = time.monotonic()
        bucket = self._buckets.get(visitor_id)
        if bucket is None:
            bucket = self._buckets[visitor_id] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def forget(self, visitor_id: uuid.UUID) -> None:
        """The visitor left this process: its bucket goes once it is full again — reconnecting does not refill
        it (a bucket still short stays, a few bytes, until the visitor's next `forget`)."""
        bucket = self._buckets.get(visitor_id)
        if bucket is not None and bucket.tokens + (time.monotonic() - bucket.at) * self._rate >= self._burst:
            del self._buckets[visitor_id]
