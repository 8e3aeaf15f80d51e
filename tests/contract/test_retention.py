"""The event log's retention on a real PostgreSQL: published events past their days, webhook deliveries delivered
long enough ago and parked ones past the events' days are deleted, in bounded batches repeated until the backlog
is gone (up to a bound per run); what is recent, unpublished, in line or parked within the days stays."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg

from contactcenter.bus.interactions import Topology
from contactcenter.bus.memory import MemoryBus
from contactcenter.webhooks.bindings import WebhookBindings
from contactcenter.webhooks.registry import Webhooks
from contactcenter.webhooks.retention import event_retention

DAYS = 30


async def write_events(pool: asyncpg.Pool, count: int, *, age_days: int, published: bool) -> list[int]:
    client = str(uuid.uuid4())
    # Published: stamped and under the relay's cursor (migration 028); not published: never stamped.
    rows = await pool.fetch(
        "WITH e AS (INSERT INTO events (id, type, subject, partition_key, data, occurred_at)"
        "  SELECT CASE WHEN $4 THEN nextval('events_public_id') END, 'client.created', $1, 'client:' || $1,"
        "         $2::jsonb, now() - make_interval(days => $3)"
        "  FROM generate_series(1, $5) RETURNING seq, id),"
        " published AS (UPDATE events_relay SET published_up_to = m.id"
        "  FROM (SELECT max(id) AS id FROM e) m WHERE m.id IS NOT NULL)"
        " SELECT seq FROM e",
        client,
        json.dumps({"client_id": client}),
        age_days,
        published,
        count,
    )
    return [row["seq"] for row in rows]


async def remaining_events(pool: asyncpg.Pool) -> list[int]:
    return [row["seq"] for row in await pool.fetch("SELECT seq FROM events ORDER BY seq")]


async def test_a_backlog_larger_than_a_batch_is_deleted_in_one_run_and_the_rest_stays(pool: asyncpg.Pool) -> None:
    await write_events(pool, 25, age_days=DAYS + 1, published=True)
    unpublished = await write_events(pool, 3, age_days=DAYS + 1, published=False)  # the broker away all along
    recent = await write_events(pool, 4, age_days=DAYS - 1, published=True)
    purged = await event_retention(pool, event_days=DAYS, delivered_hours=24, batch=10).purge()
    assert purged["events"] == 25
    assert await remaining_events(pool) == sorted(unpublished + recent)


async def test_a_run_stops_after_its_bounded_batches_and_the_next_goes_on(pool: asyncpg.Pool) -> None:
    await write_events(pool, 25, age_days=DAYS + 1, published=True)
    retention = event_retention(pool, event_days=DAYS, delivered_hours=24, batch=10, max_batches=2)
    assert (await retention.purge())["events"] == 20
    assert (await retention.purge())["events"] == 5
    assert await remaining_events(pool) == []


async def test_routers_purging_at_once_delete_each_row_once(pool: asyncpg.Pool) -> None:
    await write_events(pool, 200, age_days=DAYS + 1, published=True)
    runs = [event_retention(pool, event_days=DAYS, delivered_hours=24, batch=7) for _ in range(3)]
    purged = await asyncio.gather(*(run.purge() for run in runs))
    deleted = sum(p["events"] for p in purged)
    # Rows another run holds are skipped, so a run may stop early; a later run takes what is left.
    deleted += (await runs[0].purge())["events"]
    assert deleted == 200
    assert await remaining_events(pool) == []


async def deliveries(pool: asyncpg.Pool) -> tuple[uuid.UUID, dict[str, int]]:
    """A webhook with a delivery in each state and age; the ids by a name for each."""
    webhook_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO webhooks (id, url, types, types_regex, secret)"
        " VALUES ($1, 'https://erp.example/hook', '{#}', '', 'secret')",
        webhook_id,
    )
    cases = {
        # name: (state, created this many hours ago, delivered this many hours ago)
        "delivered long ago": ("delivered", 30.0, 25.0),
        "delivered lately": ("delivered", 2.0, 1.0),
        "parked past the days": ("parked", (DAYS + 1) * 24.0, None),
        "parked within the days": ("parked", (DAYS - 1) * 24.0, None),
        "retrying for long": ("retrying", (DAYS + 1) * 24.0, None),
        "pending": ("pending", 0.0, None),
    }
    ids: dict[str, int] = {}
    for n, (name, (state, created, delivered)) in enumerate(cases.items()):
        ids[name] = await pool.fetchval(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, event_sequence, body, state, created_at,"
            " delivered_at) VALUES ($1, $2, $3, '{}', $4, now() - make_interval(secs => $5),"
            " now() - make_interval(secs => $6)) RETURNING id",
            webhook_id,
            str(n + 1),
            n + 1,
            state,
            created * 3600,
            None if delivered is None else delivered * 3600,
        )
    return webhook_id, ids


async def kept(pool: asyncpg.Pool, ids: dict[str, int]) -> set[str]:
    rows = await pool.fetch("SELECT id FROM webhook_deliveries")
    present = {row["id"] for row in rows}
    return {name for name, delivery_id in ids.items() if delivery_id in present}


async def test_delivered_deliveries_go_after_their_hours_and_parked_ones_after_the_events_days(
    pool: asyncpg.Pool,
) -> None:
    _, ids = await deliveries(pool)
    purged = await event_retention(pool, event_days=DAYS, delivered_hours=24, batch=1).purge()
    assert (purged["delivered webhook deliveries"], purged["parked webhook deliveries"]) == (1, 1)
    assert await kept(pool, ids) == {"delivered lately", "parked within the days", "retrying for long", "pending"}


async def test_a_parked_delivery_replayed_stays_in_line_whatever_its_age(pool: asyncpg.Pool) -> None:
    webhook_id, ids = await deliveries(pool)
    replaying = Webhooks(pool, WebhookBindings(MemoryBus(), Topology("retention").webhooks_queue))
    assert await replaying.replay_parked(webhook_id) == 2
    await event_retention(pool, event_days=DAYS, delivered_hours=24).purge()
    assert {"parked past the days", "parked within the days"} <= await kept(pool, ids)


async def test_identity_tombstones_past_their_hours_are_purged_in_bounded_batches_and_recent_ones_stay(
    pool: asyncpg.Pool,
) -> None:
    """An erased card's tombstones only have to outlive the contacts still on the bus: the retention job
    deletes those older than `tombstone_hours`, a bounded batch at a time."""
    client = await pool.fetchval("INSERT INTO clients (id) VALUES (gen_random_uuid()) RETURNING id")
    await pool.execute(
        "INSERT INTO identity_tombstones (digest, client_id, erased_at)"
        " SELECT sha256(('old' || n)::bytea), $1::uuid, now() - interval '73 hours' FROM generate_series(1, 25) n"
        " UNION ALL"
        " SELECT sha256(('new' || n)::bytea), $1::uuid, now() - interval '71 hours' FROM generate_series(1, 4) n",
        client,
    )
    retention = event_retention(pool, event_days=DAYS, delivered_hours=24, tombstone_hours=72, batch=10, max_batches=2)
    assert (await retention.purge())["identity tombstones"] == 20
    assert (await retention.purge())["identity tombstones"] == 5
    ages = await pool.fetch("SELECT erased_at > now() - interval '72 hours' AS recent FROM identity_tombstones")
    assert [row["recent"] for row in ages] == [True] * 4
