"""The relay: publishes the outbox on the events exchange, in id order, each event once confirmed by the broker.

One relay publishes at a time: the one holding a session advisory lock on its own connection (another takes
over when that connection ends). A partition per entity with `FOR UPDATE SKIP LOCKED` would let several
publish at once, but it needs each relay to own whole partitions to keep per-entity order, and the public id
must be given in one place anyway (`outbox.STAMP`); one publisher, its confirms awaited together for each round
and a few full rounds written ahead of their confirms, carries more than the service makes. What it published
is one cursor (migration 028), moved over each round's confirmed prefix. Every relay moves live state's stream
into the outbox.

Woken by the outbox's NOTIFY (migration 010), with a sweep every `sweep_seconds` as a backstop; the stream's
mover by a blocking read of the stream. When the broker does not confirm, the cursor stays: the events wait,
and go out in order when it is back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from redis.exceptions import RedisError

from contactcenter.bus import Bus, Outgoing
from contactcenter.errors import ContactCenterError, Unavailable
from contactcenter.events import outbox
from contactcenter.events.outbox import StoredEvent
from contactcenter.events.stream import LiveEventStream
from schema.events import CONTENT_TYPE

log = logging.getLogger(__name__)

CHANNEL = "cc_events"
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('contactcenter.events.relay.' || current_schema()))"
UNLOCK = "SELECT pg_advisory_unlock_all()"
Connection = PoolConnectionProxy | asyncpg.Connection
# Full rounds written before the first of them is confirmed: the broker's round trip, not the relay's work, bounded
# how fast a backlog went out while each round waited for the last one's confirms.
ROUNDS_IN_FLIGHT = 3
# The longest a blocking read of the stream lasts: how long stopping the mover may take.
STREAM_WAIT_SECONDS = 0.25
FAILURES = (
    ContactCenterError,
    OSError,
    RedisError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection cut mid-protocol (answers.SERVICE_ERRORS says more)
)


class EventRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        exchange: str,
        stream: LiveEventStream,
        *,
        schema: str,
        sweep_seconds: float,
        batch: int,
        linger_seconds: float = 0.0,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._exchange = exchange
        self._stream = stream
        self._schema = schema
        self._sweep_seconds = sweep_seconds
        self._batch = batch
        self._linger_seconds = linger_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.publishing = False  # holds the lock: the one relay that publishes
        # While publishing: the cursor as this relay last moved it (None: read it again), and whether events
        # stamped before may wait beyond it.
        self._published_up_to: int | None = None
        self._stamped_before = True

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="event relay"),
            asyncio.create_task(self._move_stream(), name="event stream mover"),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        await asyncio.gather(*self._tasks)

    async def _move_stream(self) -> None:
        """Live state's events into the outbox as they come; their insert wakes the publisher."""
        while not self._stopping.is_set():
            try:
                await self._stream.move(wait_seconds=STREAM_WAIT_SECONDS)
                await self._linger()
            except FAILURES as exc:
                log.warning("moving live state's events failed, trying again: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._sweep_seconds)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                async with self._pool.acquire() as conn:
                    await self._serve(conn)
            except FAILURES as exc:
                log.warning("event relay failed, trying again: %s", exc)
                await self._pause()

    async def _serve(self, conn: Connection) -> None:
        """Publish while there is work, coming back after each linger; listen for the outbox's notifications
        only when idle. Under load no notification is sent to the relay at all (one per committing change was
        a wake-up of the relay's backend and process each), and a standby relay tries the lock at each sweep."""
        listening = False
        try:
            while not self._stopping.is_set():
                published = await self._relay(conn)
                if published is None or not self.publishing:
                    # The broker refused, or another relay publishes: try again after a sweep.
                    listening = await self._listen(conn, listening, False)
                    await self._sweep()
                elif published:
                    listening = await self._listen(conn, listening, False)
                    await self._linger()
                elif not listening:
                    # Once more after listening: what committed before the LISTEN told nobody.
                    listening = await self._listen(conn, listening, True)
                else:
                    await self._pause()
        finally:
            self.publishing = False
            await self._let_go(conn)

    async def _listen(self, conn: Connection, listening: bool, listen: bool) -> bool:
        if listen and not listening:
            self._wake.clear()
            await conn.add_listener(CHANNEL, self._notified)
        elif listening and not listen:
            await conn.remove_listener(CHANNEL, self._notified)
        return listen

    async def _sweep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._sweep_seconds)
        self._wake.clear()

    async def _let_go(self, conn: Connection) -> None:
        """The pool keeps no session state (store.open_pool): leave none behind. A connection PostgreSQL cut
        (a restart) cannot be told to stop listening — asyncpg then keeps the listener on it, and handing it back
        to the pool so warns, which fails the release (and hangs the pool's close) where warnings are errors:
        such a connection is terminated instead, which drops its listener and its place in the pool at once."""
        if not conn.is_closed():
            try:
                await conn.remove_listener(CHANNEL, self._notified)
                await conn.execute(UNLOCK)
                return
            except FAILURES as exc:
                log.info("the event relay's connection failed while letting go of it: %s", type(exc).__name__)
        conn.terminate()

    def _notified(self, _conn: Connection | asyncpg.Connection, _pid: int, _channel: str, payload: object) -> None:
        if payload == self._schema:
            self._wake.set()

    async def _linger(self) -> None:
        """Let what comes meanwhile gather: under load a round then carries many events, and the hot path's
        statements do not queue behind a round per change (two cores, shared with PostgreSQL)."""
        if self._linger_seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._linger_seconds)

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)
        self._wake.clear()

    async def relay_once(self, conn: Connection) -> bool:
        """Holding the lock (taking it if free), stamp and publish until nothing waits. False when the broker
        did not confirm everything (the cursor is moved over what it confirmed in order)."""
        return await self._relay(conn) is not None

    async def _relay(self, conn: Connection) -> int | None:
        """`relay_once`: how many events it published, None when the broker did not confirm them all."""
        if not self.publishing:
            self.publishing = bool(await conn.fetchval(TRY_LOCK))
            if not self.publishing:
                return 0
            self._published_up_to = None
        if self._published_up_to is None:
            # Taking over, or after a failure: what was stamped and not confirmed goes out first, again.
            self._published_up_to = await outbox.published_up_to(conn)
            self._stamped_before = True
        rounds: collections.deque[_Round] = collections.deque()
        published = 0
        try:
            written_up_to = self._published_up_to
            while True:
                events = await self._next_round(conn, written_up_to)
                if events:
                    rounds.append(_Round(events, await self._write(events)))
                    written_up_to = events[-1].id
                # A full round says more is waiting: write it while the broker confirms this one, up to a few
                # rounds ahead. A partial one is the last for now: what comes meanwhile wakes the relay again.
                while rounds and (len(events) < self._batch or len(rounds) >= ROUNDS_IN_FLIGHT):
                    settled = rounds.popleft()
                    if not await self._settle(conn, settled):
                        self._published_up_to = None
                        # The log serves every committed event to consumers catching up, broker or not.
                        while len(await outbox.stamp(conn, self._batch)) == self._batch:
                            pass
                        return None
                    published += len(settled.events)
                if len(events) < self._batch:
                    return published
        finally:
            for unsettled in rounds:  # after a failure: they go out again after the cursor
                unsettled.outcomes.cancel()

    async def _next_round(self, conn: Connection, written_up_to: int) -> list[StoredEvent]:
        """The next events in id order: first those stamped before (by a relay that died, or a round the broker
        refused), then committed ones given their ids now."""
        events: list[StoredEvent] = []
        if self._stamped_before:
            events = await outbox.page(conn, written_up_to, self._batch)
            if len(events) == self._batch:
                return events
            self._stamped_before = False
        return events + await outbox.stamp(conn, self._batch - len(events))

    async def _write(self, events: Sequence[StoredEvent]) -> asyncio.Future[list[Unavailable | None]]:
        """Write the round's events in id order on the one publishing channel, their confirms awaited together
        (a confirm waits for the broker's disk: one by one, an entity with five events in a round waited five
        times). A channel keeps its order into every queue, so each entity's events arrive in order."""
        return await self._bus.write_many(
            self._exchange,
            [Outgoing(event.type, event.body(), str(event.id)) for event in events],
            content_type=CONTENT_TYPE,
        )

    async def _settle(self, conn: Connection, written: _Round) -> bool:
        """Move the cursor over the round's events the broker confirmed before its first failure; False when
        there was one. When the connection fails, what the broker took is a prefix, and the rest goes out
        again after it. One message the broker refuses while it takes the next (a queue of an integrator's
        full, refusing publishes) is published again after it, with what followed: its id and `sequence` tell
        a consumer where it belongs."""
        outcomes = await written.outcomes
        failures = [n for n, failure in enumerate(outcomes) if failure is not None]
        confirmed = failures[0] if failures else len(outcomes)
        if confirmed:
            self._published_up_to = written.events[confirmed - 1].id
            await outbox.advance(conn, self._published_up_to)
        if failures:
            log.warning("%d events not published, kept for later: %s", len(outcomes) - confirmed, outcomes[failures[0]])
            return False
        return True


@dataclass(frozen=True)
class _Round:
    """Events written to the broker, and the future of its confirms."""

    events: Sequence[StoredEvent]
    outcomes: asyncio.Future[list[Unavailable | None]]
