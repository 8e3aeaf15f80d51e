"""One watch of the queues per API process: it folds the event stream into `figures.Figures` and hands the
figures to every supervisor watching, however many — a change is folded once, and a frame made once per set of
queues seen, whoever asks for it.

It follows the event log itself, up to the relay's cursor (migration 028): what the relay has published, confirmed
by the broker, in id order — every `follow_seconds` one query for the events of the types the figures fold
(`figures.FOLDED_TYPES`) after the last it folded, up to the cursor. At start it replays the log from yesterday's
midnight (UTC) — contacts that waited overnight, today's counts — up to the cursor, and follows on from there.
Of a deployment's watches, one reads the log while it runs and hands what it folded to the others (`feed.py`):
the log is read once, however many API processes there are.

It was a queue on the events exchange (every event delivered to every API process and read there: the API's CPU
per contact grew with every event, its watch fell behind at load, and the intake in the same process refused
webhooks: docs/performance.md, the tenth session), with gap detection against the log for what the queue lost. The
log is the stream's source and its truth, and the cursor says what the stream has carried: read in id order up
to it, nothing can be missed or folded twice, whatever happens to the broker, and events the relay has stamped
and not yet published wait for it as they would on the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contactcenter.errors import ContactCenterError
from contactcenter.live.state import LiveState
from contactcenter.store.directory import Directory
from contactcenter.supervision.feed import Batch, Row, WatchFeed, rows_after
from contactcenter.supervision.figures import DAY_MS, FOLDED_TYPES, AgentInfo, Figures, QueueInfo

log = logging.getLogger(__name__)

# The fields of an event's data the figures read (figures.py's handlers), taken out in PostgreSQL: the whole data
# rendered as text and parsed here, for every event in every API process, was most of the watch's cost
# (docs/performance.md, the twelfth session).
FIELDS = ("interaction_id", "conversation_id", "queue_id", "agent_id", "reservation_id", "channel", "state", "call_sid")
_READ = "id, type, (extract(epoch FROM occurred_at) * 1000)::bigint AS time_ms, " + ", ".join(
    f"data->>'{name}' AS {name}" for name in FIELDS
)
# What the relay has published (confirmed by the broker), and what the log holds of the folded types since a moment
# up to it: the replay.
RELAYED = "SELECT published_up_to FROM events_relay"
REPLAY = f"""
SELECT {_READ} FROM events
WHERE occurred_at >= $1 AND id <= $2 AND type = ANY($3::text[]) ORDER BY id
"""
# The relay's cursor, and the events of the folded types after an id up to it (an index range on `id`): one row
# with no event when there is none.
FOLLOW = f"""
SELECT r.published_up_to AS up_to, e.* FROM events_relay r
LEFT JOIN LATERAL (
    SELECT {_READ} FROM events
    WHERE id > $1 AND id <= r.published_up_to AND type = ANY($3::text[]) ORDER BY id LIMIT $2
) e ON true
ORDER BY e.id
"""
FOLLOW_PAGE = 5000
FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, ContactCenterError)
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
        directory: Directory,
        live: LiveState,
        figures: Figures,
        follow_seconds: float = 0.1,
        feed: WatchFeed | None = None,
    ) -> None:
        """`feed`: one watch of the deployment reads the log and hands the others what it folded (`feed.py`);
        without it, this watch reads the log itself."""
        self._pool = pool
        self._feed = feed
        self._follow_seconds = follow_seconds
        self._folded_up_to = 0  # every event of a folded type up to this id is folded
        self._directory = directory
        self._live = live
        self.figures = figures
        self._wake = asyncio.Event()  # set, and replaced, at every change
        self.version = 0  # grows with every change folded in: frames are made once per version and view
        self._frames: dict[frozenset[uuid.UUID] | None, _Frame] = {}
        self._stopping = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._following: asyncio.Task[None] | None = None
        self._reloading: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.reload_directory()
        await self._seed_agents()
        start = now_ms()
        self.figures.roll_to(start)
        await self._replay(datetime.fromtimestamp((start - start % DAY_MS - DAY_MS) / 1000, UTC))
        self._ticker = asyncio.create_task(self._tick(), name="queue watch day check")
        self._following = asyncio.create_task(self._follow(), name="queue watch following the event log")

    async def stop(self) -> None:
        self._stopping.set()
        for task in (self._following, self._ticker, self._reloading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._feed is not None:
            await self._feed.release()  # another watch reads the log at its next look
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
            relayed: int = await conn.fetchval(RELAYED)
            rows = await conn.fetch(REPLAY, since, relayed, FOLDED_TYPES)
        self._fold([row_of(row) for row in rows], relayed)
        self._bump()
        log.info("queue watch replayed %d events", len(rows))

    async def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._feed is None or await self._feed.reads_the_log():
                    while await self.follow_once(hand_over=self._feed is not None):
                        pass
                else:
                    await self._fold_handed(self._feed)
            except FAILURES as exc:
                log.warning("queue watch could not read the event log: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._follow_seconds)

    async def follow_once(self, *, hand_over: bool = False) -> bool:
        """Fold the log's events of the folded types the relay has published since the last folded, and with
        `hand_over` give them to the other watches (`feed`); True when there are more (a full page)."""
        before = self._folded_up_to
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(FOLLOW, before, FOLLOW_PAGE, FOLDED_TYPES)
        folded = [row_of(row) for row in rows if row["id"] is not None]
        full = len(rows) == FOLLOW_PAGE
        self._fold(folded, rows[-1]["id"] if full else rows[0]["up_to"])
        if hand_over and self._feed is not None and self._folded_up_to > before:
            await self._feed.hand_over(Batch(before, self._folded_up_to, folded))
        return full

    async def _fold_handed(self, feed: WatchFeed) -> None:
        """Fold what the watch reading the log handed over; a gap before a batch is read from the log."""
        for batch in await feed.handed():
            if batch.up_to <= self._folded_up_to:
                continue
            if batch.after > self._folded_up_to:
                while await self.follow_once():
                    pass
                if batch.up_to <= self._folded_up_to:
                    continue
            self._fold(rows_after(batch, self._folded_up_to), batch.up_to)

    def _fold(self, rows: Sequence[Row], up_to: int) -> None:
        changed = False
        for event_id, kind, time_ms, data in rows:
            changed = self.figures.apply(event_id, kind, time_ms, data) or changed
            self._learn(data)
        self._advance(up_to)
        if changed:
            self._bump()

    def _advance(self, up_to: int) -> None:
        self._folded_up_to = max(self._folded_up_to, up_to)
        self.figures.last_event_id = max(self.figures.last_event_id, self._folded_up_to)

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


def row_of(record: asyncpg.Record) -> Row:
    """An event of REPLAY or FOLLOW as the figures fold it: id, type, time, and the fields of its data they read."""
    data = {name: record[name] for name in FIELDS if record[name] is not None}
    return record["id"], record["type"], record["time_ms"], data


def _uuid_or_none(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
