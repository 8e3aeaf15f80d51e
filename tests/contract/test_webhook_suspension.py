"""A webhook's suspension in PostgreSQL (`contactcenter.webhooks.deliveries`): past its bound its line is parked
and its events are not recorded, and a dispatcher that looked at the line before an admin's replay does not
suspend again what the replay put back."""

from __future__ import annotations

import uuid

import asyncpg

from contactcenter.bus.interactions import Topology
from contactcenter.bus.memory import MemoryBus
from contactcenter.webhooks.bindings import WebhookBindings
from contactcenter.webhooks.deliveries import Deliveries
from contactcenter.webhooks.registry import Webhooks
from schema.webhooks import WebhookCreate


async def _webhook_with_line(pool: asyncpg.Pool, length: int) -> tuple[Webhooks, Deliveries, uuid.UUID]:
    webhooks = Webhooks(pool, WebhookBindings(MemoryBus(), Topology("suspension").webhooks_queue))
    created = await webhooks.create(WebhookCreate(url="https://receiver.example/hook", types=["client.#"]), None)
    deliveries = Deliveries(pool)
    for n in range(1, length + 1):
        await deliveries.record("client.created", str(n), n, b"{}")
    return webhooks, deliveries, created.id


async def test_a_suspended_webhook_has_its_line_parked_and_records_nothing_until_its_replay(
    pool: asyncpg.Pool,
) -> None:
    webhooks, deliveries, webhook_id = await _webhook_with_line(pool, 4)
    look = await deliveries.line_longer_than(webhook_id, 3)
    assert look is not None and look.longer
    assert await deliveries.suspend(webhook_id, look) == 4
    assert await deliveries.record("client.created", "5", 5, b"{}") == []
    assert await deliveries.head(webhook_id) is None

    replayed = await webhooks.replay(webhook_id)
    assert (replayed.replayed, replayed.missed_after) == (4, 4)
    assert await deliveries.record("client.created", "6", 6, b"{}") == [webhook_id]


async def test_a_line_looked_at_before_a_replay_is_not_suspended_again_after_it(pool: asyncpg.Pool) -> None:
    webhooks, deliveries, webhook_id = await _webhook_with_line(pool, 4)
    first_look = await deliveries.line_longer_than(webhook_id, 3)
    assert first_look is not None
    assert await deliveries.suspend(webhook_id, first_look) == 4

    stale_look = await deliveries.line_longer_than(webhook_id, 0)
    await webhooks.replay(webhook_id)
    assert stale_look is not None
    # A dispatcher that looked before the replay: what the replay put back stays in line.
    assert await deliveries.suspend(webhook_id, stale_look) == 0
    listed = await webhooks.visible_to(None)
    assert listed[0].suspended_at is None and listed[0].parked == 0
