"""Deliveries in PostgreSQL, one per (webhook, event), as a state machine: pending → delivered, or a failure →
retrying → … → parked after the last retry, or with the whole line when it grows past its bound and the webhook
is suspended (a replay makes it pending again). A webhook's line is its pending and retrying deliveries in event
order; one dispatcher at a time holds a webhook's lease and sends its line."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# The event is recorded for every webhook whose patterns match its routing key, once: a redelivered event
# (the dispatcher died before its ack) finds its deliveries there already. A suspended webhook records nothing.
RECORD = """
INSERT INTO webhook_deliveries (webhook_id, event_id, event_sequence, body)
SELECT id, $1, $2, $3 FROM webhooks WHERE '.' || $4::text ~ types_regex AND suspended_at IS NULL
ON CONFLICT (webhook_id, event_id) DO NOTHING
RETURNING webhook_id
"""
WITH_WORK = "SELECT DISTINCT webhook_id FROM webhook_deliveries WHERE state IN ('pending', 'retrying')"
TAKE_LEASE = """
UPDATE webhooks SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())
"""
RELEASE_LEASE = "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2"
HEAD = """
SELECT id, body, attempts, greatest(0, extract(epoch FROM next_attempt_at - now()))::float8 AS wait_seconds
FROM webhook_deliveries
WHERE webhook_id = $1 AND state IN ('pending', 'retrying')
ORDER BY event_sequence, id
LIMIT 1
"""
DELIVERED = """
UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = $2, delivered_at = now()
WHERE id = $1
"""
FAILED = """
UPDATE webhook_deliveries
SET state = CASE WHEN $4 THEN 'parked' ELSE 'retrying' END, attempts = attempts + 1, last_status = $2,
    next_attempt_at = now() + make_interval(secs => $3)
WHERE id = $1
"""

# Whether a webhook's line is longer than `$2` (at most `$2` + 1 entries of its index read), and when it was
# last replayed.
LINE_LONGER_THAN = """
SELECT (SELECT count(*) > $2 FROM (
            SELECT 1 FROM webhook_deliveries WHERE webhook_id = $1 AND state IN ('pending', 'retrying')
            LIMIT $2 + 1) line) AS longer,
       replayed_at
FROM webhooks WHERE id = $1
"""
# The webhook suspended (once: another dispatcher may have done it) and its whole line parked; how many. Not if
# it was replayed since its line was looked at (`$2`): the row's new version fails the condition.
SUSPEND = """
WITH suspended AS (
    UPDATE webhooks SET suspended_at = now(), missed_after = (
        SELECT max(event_sequence) FROM webhook_deliveries WHERE webhook_id = $1 AND state IN ('pending', 'retrying'))
    WHERE id = $1 AND suspended_at IS NULL AND replayed_at IS NOT DISTINCT FROM $2
    RETURNING id)
UPDATE webhook_deliveries SET state = 'parked'
WHERE webhook_id = (SELECT id FROM suspended) AND state IN ('pending', 'retrying')
"""

# Retention (contactcenter/events/retention.py), a bounded batch at a time, rows another process holds skipped.
# A delivered row is kept a while so that the same event, redelivered by the bus, is not sent again.
FORGET_DELIVERED = """
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE state = 'delivered' AND delivered_at < now() - make_interval(secs => $1) LIMIT $2
    FOR UPDATE SKIP LOCKED)
"""
# A parked delivery waits for an admin's replay, but no longer than the event log keeps its event.
FORGET_PARKED = """
DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries
    WHERE state = 'parked' AND created_at < now() - make_interval(days => $1) LIMIT $2
    FOR UPDATE SKIP LOCKED)
"""


@dataclass(frozen=True)
class Pending:
    """The head of a webhook's line."""

    id: int
    body: bytes
    attempts: int  # failed tries so far
    wait_seconds: float  # until its next try is due (0: now)


@dataclass(frozen=True)
class LineLook:
    """A look at a webhook's line: past its bound or not, and the webhook's last replay then."""

    longer: bool
    replayed_at: datetime | None


class Deliveries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, routing_key: str, event_id: str, sequence: int, body: bytes) -> list[uuid.UUID]:
        """Record the event for every webhook that wants it; the webhooks that got a new delivery."""
        rows = await self._pool.fetch(RECORD, event_id, sequence, body, routing_key)
        return [row["webhook_id"] for row in rows]

    async def webhooks_with_work(self) -> list[uuid.UUID]:
        return [row["webhook_id"] for row in await self._pool.fetch(WITH_WORK)]

    async def take_lease(self, webhook_id: uuid.UUID, owner: uuid.UUID, seconds: float) -> bool:
        """Take or renew the right to send this webhook's line; False while another dispatcher holds it (or
        the webhook is gone)."""
        return str(await self._pool.execute(TAKE_LEASE, webhook_id, owner, seconds)).endswith(" 1")

    async def release_lease(self, webhook_id: uuid.UUID, owner: uuid.UUID) -> None:
        await self._pool.execute(RELEASE_LEASE, webhook_id, owner)

    async def head(self, webhook_id: uuid.UUID) -> Pending | None:
        row = await self._pool.fetchrow(HEAD, webhook_id)
        if row is None:
            return None
        return Pending(id=row["id"], body=row["body"], attempts=row["attempts"], wait_seconds=row["wait_seconds"])

    async def delivered(self, delivery_id: int, status: int) -> None:
        await self._pool.execute(DELIVERED, delivery_id, status)

    async def failed(self, delivery_id: int, status: int | None, *, retry_in: float, park: bool) -> None:
        await self._pool.execute(FAILED, delivery_id, status, retry_in, park)

    async def line_longer_than(self, webhook_id: uuid.UUID, bound: int) -> LineLook | None:
        """Whether its line is past `bound`, as of when; None for a webhook deleted meanwhile."""
        row = await self._pool.fetchrow(LINE_LONGER_THAN, webhook_id, bound)
        return None if row is None else LineLook(longer=row["longer"], replayed_at=row["replayed_at"])

    async def suspend(self, webhook_id: uuid.UUID, look: LineLook) -> int:
        """Suspend the webhook and park its line; how many deliveries were parked (0: suspended already, or
        replayed since `look`)."""
        return _count(await self._pool.execute(SUSPEND, webhook_id, look.replayed_at))

    async def forget_delivered(self, older_than_seconds: float, batch: int) -> int:
        """Delete up to `batch` deliveries delivered more than `older_than_seconds` ago; how many."""
        return _count(await self._pool.execute(FORGET_DELIVERED, older_than_seconds, batch))

    async def forget_parked(self, older_than_days: int, batch: int) -> int:
        """Delete up to `batch` parked deliveries older than `older_than_days`; how many."""
        return _count(await self._pool.execute(FORGET_PARKED, older_than_days, batch))


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[1])
