"""One watch of the queues per API process: it folds the event stream into `figures.Figures` and hands the
figures to every supervisor watching, however many — a change is folded once, and a frame made once per set of
queues seen, whoever asks for it.

At start it replays the event log from yesterday's midnight (UTC) — contacts that waited overnight, today's
counts — while its own queue on the events exchange gathers what comes meanwhile; an event already replayed is
skipped by its id. Then it follows the exchange.
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
from contactcenter.live.state import LiveState
from contactcenter.store.directory import Directory
from contactcenter.supervision.figures import DAY_MS, AgentInfo, Figures, QueueInfo
from schema.events import TYPE_PREFIX

log = logging.getLogger(__name__)

REPLAY = """
SELECT id, type, (extract(epoch FROM occurred_at) * 1000)::bigint AS time_ms, data::text AS data FROM events
WHERE occurred_at >= $1 AND id IS NOT NULL ORDER BY id
"""
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
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._exchange = exchange
        self._queue_name = f"{namespace}.supervision.{uuid.uuid4().hex[:12]}"
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
        spec = QueueSpec(
            name=self._queue_name, exchange=self._exchange, binding_keys=("#",), shared=False, prefetch=256
        )
        self._subscription = await self._bus.subscribe(spec, self._delivered)
        await self.reload_directory()
        await self._seed_agents()
        start = now_ms()
        self.figures.roll_to(start)
        await self._replay(datetime.fromtimestamp((start - start % DAY_MS - DAY_MS) / 1000, UTC))
        self._ticker = asyncio.create_task(self._tick(), name="queue watch day check")

    async def stop(self) -> None:
        self._stopping.set()
        if self._subscription is not None:
            await self._subscription.close()
        for task in (self._ticker, self._reloading):
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
            rows = await conn.fetch(REPLAY, since)
        for row in rows:
            self.figures.apply(row["id"], row["type"], row["time_ms"], json.loads(row["data"]))
        self._replayed_up_to = self.figures.last_event_id
        held, self._held = self._held, []
        for delivery in held:
            self._fold(delivery)
        self._bump()
        log.info("queue watch replayed %d events", len(rows))

    async def _delivered(self, delivery: Delivery) -> None:
        if self._replayed_up_to is None:
            self._held.append(delivery)
            return
        self._fold(delivery)

    def _fold(self, delivery: Delivery) -> None:
        try:
            event = json.loads(delivery.body)
            event_id = int(event["id"])
            event_type = str(event["type"]).removeprefix(TYPE_PREFIX)
            time_ms = int(datetime.fromisoformat(event["time"]).timestamp() * 1000)
            data: dict[str, Any] = event["data"]
            if not isinstance(data, dict):
                raise TypeError("its data is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("queue watch skipped an event it could not read: %s", exc)
            return
        if self._replayed_up_to is not None and event_id <= self._replayed_up_to:
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
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("queue watch could not read the directory: %s", exc)

    async def _tick(self) -> None:
        last_read = time.monotonic()
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), DAY_CHECK_SECONDS)
            if self.figures.roll_to(now_ms()):
                self._bump()
            if time.monotonic() - last_read >= DIRECTORY_CHECK_SECONDS:
                last_read = time.monotonic()
                await self._reload_quietly()

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


def _uuid_or_none(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
