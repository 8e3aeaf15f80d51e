"""The supervisors' watch loses its queue on the events exchange (its connection to the broker dropped, as in
a broker restart: the queue is the connection's, and what it held is gone) and gets its figures right again
from the event log — with no further event to show the gap, and again when the next event shows it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pytest

from contactcenter.bus import Delivery
from contactcenter.bus.amqp import connect_amqp
from contactcenter.settings import Settings
from contactcenter.supervision.figures import FOLDED_TYPES, Figures
from contactcenter.supervision.watch import QueueWatch
from tests.e2e.test_supervisors import queue_shows, until
from tests.faults.proxy import FaultProxy, fault_proxy
from tests.running import RunningService, run_service


@pytest.fixture
async def service(service_settings: Settings) -> AsyncIterator[RunningService]:
    async with run_service(service_settings) as running:
        yield running


@pytest.fixture
async def proxy(service_settings: Settings) -> AsyncIterator[FaultProxy]:
    assert service_settings.amqp_url is not None
    parsed = urlparse(service_settings.amqp_url.get_secret_value())
    assert parsed.hostname is not None and parsed.port is not None
    async with fault_proxy(parsed.hostname, parsed.port) as running:
        yield running


@pytest.fixture
def resync_seconds() -> float:
    return 0.5


@pytest.fixture
async def watch(service: RunningService, proxy: FaultProxy, resync_seconds: float) -> AsyncIterator[QueueWatch]:
    """A watch as the service runs one, whose connection to the broker goes through the proxy."""
    assert service.settings.amqp_url is not None
    url = urlparse(service.settings.amqp_url.get_secret_value())
    assert url.port is not None
    through = url._replace(netloc=url.netloc.replace(f":{url.port}", f":{proxy.port}")).geturl()
    bus = await connect_amqp(through, publish_timeout=1.0)
    services = service.services
    watch = QueueWatch(
        pool=services.pool,
        bus=bus,
        exchange=services.topology.events,
        namespace=service.settings.namespace,
        directory=services.directory,
        live=services.live,
        figures=Figures(short_abandon_seconds=5.0, default_target_seconds=20.0, default_goal=0.8),
        resync_seconds=resync_seconds,
    )
    await watch.start()
    try:
        yield watch
    finally:
        await watch.stop()
        await bus.close()


def sales(watch: QueueWatch) -> dict[str, object]:
    found = [q for q in watch.snapshot(None)["queues"] if q["name"] == "sales"]
    return found[0] if found else {}


async def watch_shows(watch: QueueWatch, **expected: object) -> None:
    async def check() -> bool:
        seen = sales(watch)
        return bool(seen) and all(seen[key] == value for key, value in expected.items())

    await until(check, f"the watch shows {expected} (last seen {sales(watch)})", within=30.0)


async def lose_the_queue(proxy: FaultProxy, service: RunningService, sender: str, waiting: int) -> None:
    """An SMS comes while the watch's connection is lost; then the connection drops, its queue with it."""
    proxy.blackhole()
    assert (await service.post_sms(sender=sender, body="Is my car ready?")).status == 200
    await queue_shows(service, "sales", waiting=waiting)  # the service's own watch saw it: it was published
    proxy.forward()
    proxy.reset()


async def test_a_lost_queue_is_made_good_from_the_event_log_with_no_further_event(
    service: RunningService, proxy: FaultProxy, watch: QueueWatch
) -> None:
    await service.create_queue("sales", ["sms"])
    assert (await service.post_sms(sender="+14155550101", body="Hello")).status == 200
    await watch_shows(watch, waiting=1, offered=1)

    await lose_the_queue(proxy, service, "+14155550102", waiting=2)
    await watch_shows(watch, waiting=2, offered=2)
    await folded_all(service, watch)


LOST_ON_THE_WAY = """
WITH lost AS (INSERT INTO events (id, type, subject, partition_key, data)
              VALUES (nextval('events_public_id'), 'interaction.routed', $1, 'conversation:' || $1, $2::jsonb)
              RETURNING id)
UPDATE events_relay SET published_up_to = lost.id FROM lost WHERE published_up_to < lost.id
"""


@pytest.mark.parametrize("resync_seconds", [300.0])  # only the next event can show the loss
async def test_the_next_event_shows_a_gap_and_what_it_skipped_is_read_first(
    service: RunningService, watch: QueueWatch
) -> None:
    """An event stamped and marked published that never reached the watch's queue (the relay's lock passed
    on, a publish lost on the way): the next event delivered leaves a gap in the ids, read from the log."""
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
    service: RunningService, watch: QueueWatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay lags: an event is stamped and not yet published (the relay's cursor is below it). Looks at the
    log, however many, leave it to the exchange — it is not lost; once the cursor passes it and it still does
    not come, it is read from the log."""
    created = await service.create_queue("sales", ["sms"])
    assert (await service.post_sms(sender="+14155550101", body="Hello")).status == 200
    await watch_shows(watch, waiting=1, offered=1)

    conversation = str(uuid.uuid4())
    data = {"interaction_id": str(uuid.uuid4()), "conversation_id": conversation, "queue_id": created["id"]}
    async with service.services.pool.acquire() as conn:
        stamped = await conn.fetchval(STAMPED_NOT_PUBLISHED, conversation, data)
    await asyncio.sleep(4 * 0.5)  # four looks of the log (`resync_seconds`)
    assert sales(watch)["waiting"] == 1
    assert "not delivered" not in caplog.text

    async with service.services.pool.acquire() as conn:  # published after all, and lost on the way
        await conn.execute("UPDATE events_relay SET published_up_to = $1 WHERE published_up_to < $1", stamped)
    await watch_shows(watch, waiting=2, offered=2)
    assert "queue watch read 1 events it was not delivered from the event log" in caplog.text
    await folded_all(service, watch)


@pytest.fixture
def delivered_types(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The routing keys of what every queue watch of this process is delivered (before any starts)."""
    seen: list[str] = []
    delivered = QueueWatch._delivered

    async def spy(self: QueueWatch, delivery: Delivery) -> None:
        seen.append(delivery.routing_key)
        await delivered(self, delivery)

    monkeypatch.setattr(QueueWatch, "_delivered", spy)
    return seen


async def test_the_watch_is_delivered_only_the_events_it_folds(
    delivered_types: list[str], service: RunningService, watch: QueueWatch
) -> None:
    await service.create_queue("sales", ["sms"])
    assert (await service.post_sms(sender="+14155550101", body="Hello")).status == 200
    await watch_shows(watch, waiting=1, offered=1)
    await folded_all(service, watch)

    async with service.services.pool.acquire() as conn:
        written = {row["type"] for row in await conn.fetch("SELECT DISTINCT type FROM events")}
    assert {"client.created", "identity.added"} <= written
    assert "interaction.routed" in delivered_types
    assert set(delivered_types) <= set(FOLDED_TYPES)
