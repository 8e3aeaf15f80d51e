"""What the retention job deletes (`contactcenter.events.retention`): published events past the log's days,
deliveries delivered long enough ago, parked deliveries as old as the events the log no longer keeps, and
erasure's identity tombstones past their hours (`contactcenter.store.privacy`)."""

from __future__ import annotations

from functools import partial

import asyncpg

from contactcenter.events import outbox
from contactcenter.events.retention import BATCH, MAX_BATCHES, Retention
from contactcenter.store.privacy import forget_tombstones
from contactcenter.webhooks.deliveries import Deliveries


def event_retention(
    pool: asyncpg.Pool,
    *,
    event_days: int,
    delivered_hours: float,
    tombstone_hours: float = 72.0,
    batch: int = BATCH,
    max_batches: int = MAX_BATCHES,
) -> Retention:
    deliveries = Deliveries(pool)
    return Retention(
        {
            "events": partial(outbox.forget_older_than, pool, event_days),
            "delivered webhook deliveries": partial(deliveries.forget_delivered, delivered_hours * 3600),
            "parked webhook deliveries": partial(deliveries.forget_parked, event_days),
            "identity tombstones": partial(forget_tombstones, pool, tombstone_hours * 3600),
        },
        batch=batch,
        max_batches=max_batches,
    )
