"""One watch of a deployment reads the event log; the others fold what it hands over (`supervision/feed.py`),
so PostgreSQL reads each event once however many API processes run. A watch that missed batches reads the gap
from the log; when the reader stops another takes over; without Redis every watch reads the log itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from contactcenter.supervision.feed import Batch, WatchFeed
from contactcenter.supervision.watch import QueueWatch
from tests.conftest import REDIS_URL
from tests.e2e.test_supervisors import until
from tests.faults.test_supervisor_resync import folded_all, new_watch, sales, service, subscribed, watch_shows
from tests.running import RunningService

__all__ = ["service", "subscribed"]  # the fixtures, shared

COUNTED = ("offered", "waiting", "answered", "abandoned")

Watches = Callable[..., Awaitable[QueueWatch]]
Feeds = Callable[..., WatchFeed]


class Counted:
    """How often a watch read the log since the last `reset`."""

    def __init__(self, watch: QueueWatch) -> None:
        self.reads = 0
        follow_once = watch.follow_once

        async def counting(*, hand_over: bool = False) -> bool:
            self.reads += 1
            return await follow_once(hand_over=hand_over)

        watch.follow_once = counting  # type: ignore[method-assign]  # a spy on this one watch


@pytest.fixture
async def feed_namespace(redis_cleanup: None) -> AsyncIterator[str]:
    """A namespace for these watches' lease and stream only: the service's own watch reads on its own."""
    namespace = f"feedtest-{uuid.uuid4().hex[:8]}"
    yield namespace
    redis = aioredis.from_url(REDIS_URL)
    await redis.delete(f"{namespace}:supervision:reader", f"{namespace}:supervision:folded")
    await redis.aclose()


@pytest.fixture
async def feeds(feed_namespace: str) -> AsyncIterator[Feeds]:
    """Feeds on this test's namespace, each with a Redis client of its own (as each API process has)."""
    clients: list[aioredis.Redis] = []

    def make(redis_url: str = REDIS_URL) -> WatchFeed:
        clients.append(aioredis.from_url(redis_url))
        return WatchFeed(clients[-1], feed_namespace, lease_seconds=2.0)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def watches(service: RunningService, feeds: Feeds, feed_namespace: str) -> AsyncIterator[Watches]:
    """Watches as API processes run them, on the service's database, each started once the one before holds
    the lease (the first is the reader); stopped at the end."""
    started: list[QueueWatch] = []
    redis = aioredis.from_url(REDIS_URL)

    async def leased() -> bool:
        return bool(await redis.exists(f"{feed_namespace}:supervision:reader"))

    async def start(feed: WatchFeed | None, *, after_the_lease: bool = True) -> QueueWatch:
        if started and after_the_lease:
            await until(leased, "the first watch holds the lease", within=10.0)
        watch = new_watch(service, feed)
        await watch.start()
        started.append(watch)
        return watch

    yield start
    for watch in started:
        await watch.stop()
    await redis.aclose()


def counts(watch: QueueWatch) -> dict[str, object]:
    return {key: sales(watch).get(key) for key in COUNTED}


async def contacts(service: RunningService, first: int, many: int) -> None:
    for n in range(first, first + many):
        assert (await service.post_sms(sender=f"+1415555{n:04d}", body="Hello")).status == 200


async def test_one_watch_reads_the_log_and_the_other_folds_what_it_hands_over(
    service: RunningService, watches: Watches, feeds: Feeds
) -> None:
    await service.create_queue("sales", ["sms"])
    reader = await watches(feeds())
    other = await watches(feeds())
    await contacts(service, 100, 3)
    await watch_shows(reader, waiting=3, offered=3)
    await watch_shows(other, waiting=3, offered=3)

    reading, following = Counted(reader), Counted(other)
    await contacts(service, 200, 5)
    await watch_shows(reader, waiting=8, offered=8)
    await watch_shows(other, waiting=8, offered=8)
    await folded_all(service, other)
    assert reading.reads > 0 and following.reads == 0, "the other watch folded only what was handed over"
    assert other.figures.last_event_id == reader.figures.last_event_id
    assert other.snapshot(None)["queues"][0]["channels"] == reader.snapshot(None)["queues"][0]["channels"]


async def test_a_watch_that_missed_batches_reads_the_gap_from_the_log(
    service: RunningService, watches: Watches, feeds: Feeds, feed_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await service.create_queue("sales", ["sms"])
    reader = await watches(feeds())
    other_feed = feeds()
    other = await watches(other_feed)
    await contacts(service, 100, 2)
    await watch_shows(other, waiting=2, offered=2)

    async def nothing_handed() -> list[Batch]:
        return []

    monkeypatch.setattr(other_feed, "handed", nothing_handed)  # it misses what comes now…
    await contacts(service, 200, 3)
    await watch_shows(reader, waiting=5, offered=5)
    redis = aioredis.from_url(REDIS_URL)
    await redis.xtrim(f"{feed_namespace}:supervision:folded", maxlen=0)  # …and the stream forgets it
    await redis.aclose()
    assert counts(other)["waiting"] == 2
    monkeypatch.undo()

    following = Counted(other)
    await contacts(service, 300, 1)
    await watch_shows(other, waiting=6, offered=6)
    await folded_all(service, other)
    assert following.reads > 0, "the gap was read from the log"
    assert counts(other) == counts(reader)


async def test_when_the_reader_stops_another_watch_reads_the_log(
    service: RunningService, watches: Watches, feeds: Feeds
) -> None:
    await service.create_queue("sales", ["sms"])
    reader = await watches(feeds())
    other = await watches(feeds())
    await contacts(service, 100, 2)
    await watch_shows(other, waiting=2, offered=2)

    following = Counted(other)
    await reader.stop()  # gives the lease back
    await contacts(service, 200, 2)
    await watch_shows(other, waiting=4, offered=4)
    await folded_all(service, other)
    assert following.reads > 0, "the other watch reads the log now"


async def test_without_redis_every_watch_reads_the_log(service: RunningService, watches: Watches, feeds: Feeds) -> None:
    await service.create_queue("sales", ["sms"])
    nowhere = "redis://127.0.0.1:1/0"  # nothing listens there
    first = await watches(feeds(nowhere))
    second = await watches(feeds(nowhere), after_the_lease=False)  # no lease: no Redis
    await contacts(service, 100, 3)
    for watch in (first, second):
        await watch_shows(watch, waiting=3, offered=3)
        await folded_all(service, watch)
