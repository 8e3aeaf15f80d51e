"""When a failed delivery is tried again: exponential backoff with full jitter (a crowd of failed deliveries
does not come back at once), never sooner than the receiver's `Retry-After` asks."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_delay(attempts: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds before the next try, after `attempts` failed tries (1 or more)."""
    ceiling = min(cap, base * 2 ** min(attempts - 1, 60))
    delay = random.uniform(0, ceiling)  # jitter, not a secret: `random` will do
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delay-seconds or an HTTP date (RFC 9110); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
