"""One watch of the queues per API process: it folds the event stream into `figures.Figures` and hands the
figures to every supervisor watching, however many — a change is folded once, and a frame made once per set of
queues seen, whoever asks for it.

Its queue on the events exchange is bound to the types the figures fold only (`figures.FOLDED_TYPES`): every
other event stays away from the API processes. At start it replays the event log (those types) from yesterday's
midnight (UTC) — contacts that waited overnight, today's counts — while its queue gathers what comes meanwhile;
an event already replayed is skipped by its id. Then it follows the exchange.

The relay publishes in id order on one channel, so the watch's queue holds the folded types in id order too, but
their ids leave gaps (the other types). The watch keeps `checked_up_to`: every event of a folded type up to that
id is folded. What is delivered is gathered for a moment, then counted against the log (one query for the
gathering: how many events of those types lie between `checked_up_to` and the last delivered); when the log holds
more, the range is read from it and folded in id order instead (a publish lost on the way, a queue lost with what
it held and bound again: a broker restart, a dropped connection). Should no event come at all, a look at the
relay's cursor every `resync_seconds` finds what was lost: what the relay had published (confirmed by the broker)
at the previous look and is still not delivered, while nothing was delivered between the two looks, is read from
the log, and the watch subscribes again on a queue of its own. Events the relay has stamped and not yet published
are never read from the log: a relay that lags is not a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contactcenter.bus import Bus, Delivery, QueueSpec, Subscription
from contactcenter.errors import ContactCenterError
from contactcenter.live.state import LiveState
from contactcenter.store.directory import Directory
from contactcenter.supervision.figures import DAY_MS, FOLDED_TYPES, AgentInfo, Figures, QueueInfo
from schema.events import TYPE_PREFIX

log = logging.getLogger(__name__)

# The log's last stamped id, then what it holds of the folded types up to it since a moment: the replay.
LAST_ID = "SELECT coalesce(max(id), 0) FROM events"
REPLAY = """
SELECT id, type, (extract(epoch FROM occurred_at) * 1000)::bigint AS time_ms, data::text AS data FROM events
WHERE occurred_at >= $1 AND id <= $2 AND type = ANY($3::text[]) ORDER BY id
"""
# How many events of the folded types the log holds after one id and up to another (an index range on `id`).
COUNT = "SELECT count(*) FROM events WHERE id > $1 AND id <= $2 AND type = ANY($3::text[])"
# The events of the folded types after one id and up to another, when the count showed some were not delivered.
CATCH_UP = """
SELECT id, type, (extract(epoch FROM occurred_at) * 1000)::bigint AS time_ms, data::text AS data FROM events
WHERE id > $1 AND id <= $2 AND type = ANY($4::text[]) ORDER BY id LIMIT $3
"""
CATCH_UP_PAGE = 5000
# What the relay has published, confirmed by the broker (migration 028).
RELAYED = "SELECT published_up_to FROM events_relay"
# How long deliveries gather before they are counted against the log: one query for them all. Frames go out
# at most every `supervisor_frame_seconds` (0.2 s by default) anyway.
GATHER_SECONDS = 0.05
RETRY_SECONDS = 1.0
FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, ContactCenterError)
CLOSE_SECONDS = 5.0
# How often the watch looks at the clock (a new day starts new counts) and reads the directory again (queues,
# agents and supervisors created since: no event tells of them). An event naming a queue or agent it has not
# met makes it read the directory at once.
DAY_CHECK_SECONDS = 1.0
DIRECTORY_CHECK_SECONDS = 2.0


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Frame:
    version: int
    text: str


class QueueWatch:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        bus: Bus,
        exchange: str,
        namespace: str,
        directory: Directory,
        live: LiveState,
        figures: Figures,
        resync_seconds: float = 5.0,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._exchange = exchange
        self._namespace = namespace
        self._resync_seconds = resync_seconds
        self._fold_lock = asyncio.Lock()  # one fold (and catch-up) at a time, in delivery order
        self._checked_up_to = 0  # every event of a folded type up to this id is folded
        self._pending: list[tuple[int, str, int, dict[str, Any]]] = []  # delivered, not yet counted and folded
        self._verifying: asyncio.Task[None] | None = None
        self._delivered_count = 0  # deliveries read so far: a look tells whether any came since the last
        self._relayed_seen: int | None = None  # the relay's cursor at the previous look, and the count then
        self._delivered_at_look = 0
        self._directory = directory
        self._live = live
        self.figures = figures
        self._replayed_up_to: int | None = None  # None while replaying: deliveries wait
        self._held: list[Delivery] = []
        self._subscription: Subscription | None = None
        self._wake = asyncio.Event()  # set, and replaced, at every change
        self.version = 0  # grows with every change folded in: frames are made once per version and view
        self._frames: dict[frozenset[uuid.UUID] | None, _Frame] = {}
        self._stopping = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._reloading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subscription = await self._subscribe()
        await self.reload_directory()
        await self._seed_agents()
        start = now_ms()
        self.figures.roll_to(start)
        await self._replay(datetime.fromtimestamp((start - start % DAY_MS - DAY_MS) / 1000, UTC))
        self._ticker = asyncio.create_task(self._tick(), name="queue watch day check")

    async def _subscribe(self) -> Subscription:
        spec = QueueSpec(
            name=f"{self._namespace}.supervision.{uuid.uuid4().hex[:12]}",
            exchange=self._exchange,
            binding_keys=FOLDED_TYPES,
            shared=False,
            prefetch=256,
        )
        return await self._bus.subscribe(spec, self._delivered)

    async def stop(self) -> None:
        self._stopping.set()
        if self._subscription is not None:
            await self._subscription.close()
        for task in (self._ticker, self._reloading, self._verifying):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._wake.set()

    async def reload_directory(self) -> None:
        queues = {t.id: QueueInfo(t.id, t.name, t.seconds, t.goal) for t in await self._directory.queue_targets()}
        agents = {a.id: AgentInfo(a.id, a.name, frozenset(a.queue_ids)) for a in await self._directory.agents()}
        if queues == self.figures.queues and agents == self.figures.agent_info:
            return
        self.figures.know(queues.values(), agents.values())
        self._bump()

    async def _seed_agents(self) -> None:
        agents = list(self.figures.agent_info)
        for agent_id, status in zip(agents, await self._live.agent_statuses(agents), strict=True):
            self.figures.seed_agent(agent_id, status.state)

    async def _replay(self, since: datetime) -> None:
        async with self._pool.acquire() as conn:
            last: int = await conn.fetchval(LAST_ID)
            rows = await conn.fetch(REPLAY, since, last, FOLDED_TYPES)
        for row in rows:
            self.figures.apply(row["id"], row["type"], row["time_ms"], json.loads(row["data"]))
        self._checked_up_to = last
        self.figures.last_event_id = max(self.figures.last_event_id, last)
        self._replayed_up_to = last
        held, self._held = self._held, []
        for delivery in held:
            self._take(delivery)
        self._bump()
        log.info("queue watch replayed %d events", len(rows))

    async def _delivered(self, delivery: Delivery) -> None:
        if self._replayed_up_to is None:
            self._held.append(delivery)
            return
        self._take(delivery)

    def _take(self, delivery: Delivery) -> None:
        """A delivery, gathered to be counted against the log with the others that come meanwhile."""
        event = _read(delivery)
        if event is None:
            return
        self._delivered_count += 1
        self._pending.append(event)
        if self._verifying is None or self._verifying.done():
            self._verifying = asyncio.create_task(self._verify_pending(), name="queue watch folding")

    async def _verify_pending(self) -> None:
        while self._pending and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), GATHER_SECONDS)
            gathered, self._pending = self._pending, []
            try:
                async with self._fold_lock:
                    await self._verify(gathered)
            except FAILURES as exc:
                log.warning("queue watch could not look at the event log: %s", exc)
                self._pending[:0] = gathered  # counted again after a pause, before what came since
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), RETRY_SECONDS)

    async def _verify(self, gathered: list[tuple[int, str, int, dict[str, Any]]]) -> None:
        """Fold what was delivered when the log holds no other event of the folded types in its range; else fold
        the range from the log."""
        fresh: list[tuple[int, str, int, dict[str, Any]]] = []
        for event in gathered:  # in id order; a republish repeats ids already gathered or folded
            if event[0] > (fresh[-1][0] if fresh else self._checked_up_to):
                fresh.append(event)
        if not fresh:
            return
        up_to = fresh[-1][0]
        async with self._pool.acquire() as conn:
            held: int = await conn.fetchval(COUNT, self._checked_up_to, up_to, FOLDED_TYPES)
        if held == len(fresh):
            for event in fresh:
                self._fold(event)
        else:
            await self._catch_up(up_to, delivered=len(fresh))
        self._advance(up_to)

    def _advance(self, up_to: int) -> None:
        self._checked_up_to = max(self._checked_up_to, up_to)
        self.figures.last_event_id = max(self.figures.last_event_id, self._checked_up_to)

    async def _catch_up(self, up_to: int, *, delivered: int = 0) -> int:
        """Fold the log's events of the folded types after `checked_up_to` and up to `up_to`, in id order (those
        delivered among them too); how many were not delivered."""
        found = 0
        after = self._checked_up_to
        while True:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(CATCH_UP, after, up_to, CATCH_UP_PAGE, FOLDED_TYPES)
            for row in rows:
                data = json.loads(row["data"])
                if isinstance(data, dict):
                    self.figures.apply(row["id"], row["type"], row["time_ms"], data)
                    self._learn(data)
            found += len(rows)
            if len(rows) < CATCH_UP_PAGE:
                break
            after = rows[-1]["id"]
        missed = found - delivered
        if missed > 0:
            log.warning("queue watch read %d events it was not delivered from the event log", missed)
        if found:
            self._bump()
        return missed

    async def _resync(self) -> None:
        """With nothing delivered since the previous look, read from the log what the relay had published by
        then and the exchange did not bring; then subscribe again."""
        async with self._pool.acquire() as conn:
            relayed: int = await conn.fetchval(RELAYED)
        published, self._relayed_seen = self._relayed_seen, relayed
        quiet = self._delivered_count == self._delivered_at_look and not self._pending
        self._delivered_at_look = self._delivered_count
        if published is None or not quiet:
            return
        async with self._fold_lock:
            if published <= self._checked_up_to or self._pending or self._delivered_count != self._delivered_at_look:
                return
            async with self._pool.acquire() as conn:
                held: int = await conn.fetchval(COUNT, self._checked_up_to, published, FOLDED_TYPES)
            missed = await self._catch_up(published) if held else 0
            self._advance(published)
            if not missed:
                return
        # What was lost may be the queue itself: a queue of its own again (what both bring is folded once).
        old, self._subscription = self._subscription, await self._subscribe()
        if old is not None:
            try:
                await asyncio.wait_for(old.close(), CLOSE_SECONDS)
            except Exception as exc:  # its channel may be gone with the connection it was on
                log.info("queue watch left its lost subscription: %s", type(exc).__name__)

    def _fold(self, event: tuple[int, str, int, dict[str, Any]]) -> None:
        event_id, event_type, time_ms, data = event
        if event_id <= self.figures.last_event_id:
            return
        if self.figures.apply(event_id, event_type, time_ms, data):
            self._bump()
        self._learn(data)

    def _learn(self, data: dict[str, Any]) -> None:
        """A queue or agent the watch has not met yet (created since it started): read the directory again."""
        queue, agent = _uuid_or_none(data.get("queue_id")), _uuid_or_none(data.get("agent_id"))
        unknown = (queue is not None and queue not in self.figures.queues) or (
            agent is not None and agent not in self.figures.agent_info
        )
        if unknown and (self._reloading is None or self._reloading.done()):
            self._reloading = asyncio.create_task(self._reload_quietly(), name="queue watch directory")

    async def _reload_quietly(self) -> None:
        try:
            await self.reload_directory()
        # InternalClientError: a connection PostgreSQL cut in the middle of its protocol (contactcenter/answers.py);
        # uncaught, it ended the day check's loop and made `stop` raise it.
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            log.warning("queue watch could not read the directory: %s", exc)

    async def _tick(self) -> None:
        last_read = last_resync = time.monotonic()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), DAY_CHECK_SECONDS)
            if self.figures.roll_to(now_ms()):
                self._bump()
            if time.monotonic() - last_read >= DIRECTORY_CHECK_SECONDS:
                last_read = time.monotonic()
                await self._reload_quietly()
            if time.monotonic() - last_resync >= self._resync_seconds:
                last_resync = time.monotonic()
                try:
                    await self._resync()
                except FAILURES as exc:
                    log.warning("queue watch could not look at the event log: %s", exc)

    def _bump(self) -> None:
        self.version += 1
        self._frames.clear()
        woken, self._wake = self._wake, asyncio.Event()
        woken.set()

    async def wait_change(self, seen: int, at_most_seconds: float) -> int:
        """The current version, as soon as it differs from `seen` (or after `at_most_seconds`, or when stopping)."""
        if self.version == seen and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), at_most_seconds)
        return self.version

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def frame(self, visible: frozenset[uuid.UUID] | None) -> str:
        """The figures of the queues `visible` as JSON, made once per version for everyone who sees them."""
        made = self._frames.get(visible)
        if made is None or made.version != self.version:
            snapshot = self.figures.snapshot(now_ms(), visible)
            made = self._frames[visible] = _Frame(self.version, json.dumps(snapshot, separators=(",", ":")))
        return made.text

    def snapshot(self, visible: frozenset[uuid.UUID] | None) -> dict[str, Any]:
        return self.figures.snapshot(now_ms(), visible)


def _read(delivery: Delivery) -> tuple[int, str, int, dict[str, Any]] | None:
    """A delivered event's id, type (without the prefix), time (ms) and data; None when it cannot be read."""
    try:
        event = json.loads(delivery.body)
        data = event["data"]
        if not isinstance(data, dict):
            raise TypeError("its data is not an object")
        time_ms = int(datetime.fromisoformat(event["time"]).timestamp() * 1000)
        return int(event["id"]), str(event["type"]).removeprefix(TYPE_PREFIX), time_ms, data
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("queue watch skipped an event it could not read: %s", exc)
        return None


def _uuid_or_none(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
