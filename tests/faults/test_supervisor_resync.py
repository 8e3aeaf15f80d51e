"""The supervisors' watch follows the event log up to the relay's cursor: what the relay published and the
exchange lost on the way is folded all the same, what it has stamped and not yet published is waited for, and no
API process is delivered the event stream for it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contactcenter.bus import QueueSpec
from contactcenter.bus.amqp import AmqpBus
from contactcenter.settings import Settings
from contactcenter.supervision.feed import WatchFeed
from contactcenter.supervision.figures import Figures
from contactcenter.supervision.watch import QueueWatch
from tests.e2e.test_supervisors import until
from tests.running import RunningService, run_service

FOLLOW_SECONDS = 0.1


@pytest.fixture
def subscribed(monkeypatch: pytest.MonkeyPatch) -> list[QueueSpec]:
    """The queues this process's AMQP buses subscribe to (set up before the service starts)."""
    specs: list[QueueSpec] = []
    subscribe = AmqpBus.subscribe

    async def spy(self: AmqpBus, spec: QueueSpec, handler: Any) -> Any:
        specs.append(spec)
        return await subscribe(self, spec, handler)

    monkeypatch.setattr(AmqpBus, "subscribe", spy)
    return specs


@pytest.fixture
async def service(subscribed: list[QueueSpec], service_settings: Settings) -> AsyncIterator[RunningService]:
    async with run_service(service_settings) as running:
        yield running


def new_watch(service: RunningService, feed: WatchFeed | None = None) -> QueueWatch:
    """A watch as the service runs one, on its database (with `feed`, one of a deployment's watches)."""
    services = service.services
    return QueueWatch(
        pool=services.pool,
        directory=services.directory,
        live=services.live,
        figures=Figures(short_abandon_seconds=5.0, default_target_seconds=20.0, default_goal=0.8),
        follow_seconds=FOLLOW_SECONDS,
        feed=feed,
    )


@pytest.fixture
async def watch(service: RunningService) -> AsyncIterator[QueueWatch]:
    """A watch as the service runs one, reading the log itself."""
    watch = new_watch(service)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.stop()


def sales(watch: QueueWatch) -> dict[str, object]:
    found = [q for q in watch.snapshot(None)["queues"] if q["name"] == "sales"]
    return found[0] if found else {}


async def watch_shows(watch: QueueWatch, **expected: object) -> None:
    async def check() -> bool:
        seen = sales(watch)
        return bool(seen) and all(seen[key] == value for key, value in expected.items())

    await until(check, f"the watch shows {expected} (last seen {sales(watch)})", within=30.0)


LOST_ON_THE_WAY = """
WITH lost AS (INSERT INTO events (id, type, subject, partition_key, data)
              VALUES (nextval('events_public_id'), 'interaction.routed', $1, 'conversation:' || $1, $2::jsonb)
              RETURNING id)
UPDATE events_relay SET published_up_to = lost.id FROM lost WHERE published_up_to < lost.id
"""


async def test_an_event_published_and_lost_on_the_way_is_folded_from_the_log(
    service: RunningService, watch: QueueWatch
) -> None:
    """An event stamped and marked published that never reached the exchange's queues (the relay's lock passed
    on, a publish lost on the way): the watch reads the log, so it folds it all the same."""
    created = await service.create_queue("sales", ["sms"])
    assert (await service.post_sms(sender="+14155550101", body="Hello")).status == 200
    await watch_shows(watch, waiting=1, offered=1)

    conversation = str(uuid.uuid4())
    data = {"interaction_id": str(uuid.uuid4()), "conversation_id": conversation, "queue_id": created["id"]}
    async with service.services.pool.acquire() as conn:
        await conn.execute(LOST_ON_THE_WAY, conversation, data)
    assert (await service.post_sms(sender="+14155550103", body="Hello")).status == 200
    await watch_shows(watch, waiting=3, offered=3)
    await folded_all(service, watch)


async def folded_all(service: RunningService, watch: QueueWatch) -> None:
    async def check() -> bool:
        async with service.services.pool.acquire() as conn:
            last = await conn.fetchval("SELECT max(id) FROM events")
        return bool(watch.figures.last_event_id == last)

    await until(check, "the watch folded the log's last event", within=30.0)


STAMPED_NOT_PUBLISHED = """
INSERT INTO events (id, type, subject, partition_key, data)
VALUES (nextval('events_public_id'), 'interaction.routed', $1, 'conversation:' || $1, $2::jsonb)
RETURNING id
"""


async def test_an_event_the_relay_has_not_published_yet_is_waited_for_and_not_read_from_the_log(
    service: RunningService, watch: QueueWatch
) -> None:
    """The relay lags: an event is stamped and not yet published (the relay's cursor is below it). The watch
    folds it once the relay has published it, as a consumer of the exchange would, not before."""
    created = await service.create_queue("sales", ["sms"])
    assert (await service.post_sms(sender="+14155550101", body="Hello")).status == 200
    await watch_shows(watch, waiting=1, offered=1)

    conversation = str(uuid.uuid4())
    data = {"interaction_id": str(uuid.uuid4()), "conversation_id": conversation, "queue_id": created["id"]}
    async with service.services.pool.acquire() as conn:
        stamped = await conn.fetchval(STAMPED_NOT_PUBLISHED, conversation, data)
    await asyncio.sleep(10 * FOLLOW_SECONDS)  # ten reads of the log
    assert sales(watch)["waiting"] == 1

    async with service.services.pool.acquire() as conn:  # the relay published it
        await conn.execute("UPDATE events_relay SET published_up_to = $1 WHERE published_up_to < $1", stamped)
    await watch_shows(watch, waiting=2, offered=2)
    await folded_all(service, watch)


async def test_no_api_process_is_delivered_the_event_stream_for_its_watch(
    subscribed: list[QueueSpec], service: RunningService, watch: QueueWatch
) -> None:
    """The service's watch and this one fold an SMS's events, and neither holds a queue on the events exchange:
    only the webhook dispatchers do (bound to the registered webhooks' patterns)."""
    await service.create_queue("sales", ["sms"])
    assert (await service.post_sms(sender="+14155550101", body="Hello")).status == 200
    await watch_shows(watch, waiting=1, offered=1)
    await folded_all(service, watch)

    events = service.services.topology.events
    assert subscribed, "the service subscribes to its queues through the spied bus"
    on_events = [spec.name for spec in subscribed if spec.exchange == events]
    assert all(name.endswith(".webhooks") for name in on_events), on_events
