"""The relay: publishes the outbox on the events exchange, in id order, each event once confirmed by the broker.

One relay publishes at a time: the one holding a session advisory lock on its own connection (another takes
over when that connection ends). A partition per entity with `FOR UPDATE SKIP LOCKED` would let several
publish at once, but it needs each relay to own whole partitions to keep per-entity order, and the public id
must be given in one place anyway (`outbox.STAMP`); one publisher, its confirms awaited together for each round
and a few full rounds written ahead of their confirms, carries more than the service makes. What it published
is one cursor (migration 028), moved over each round's confirmed prefix. The publishing relay also moves live
state's stream into the outbox, after each stamp: those events are written with their ids, never stamped.

Busy, the publishing relay comes back every `linger_seconds` (counted from the start of its last cycle, not its
end): each cycle stamps what is committed, moves live state's stream in after it, writes them, and settles
the confirms that came meanwhile — a round's confirms are not awaited before the next round is stamped (up to
`ROUNDS_IN_FLIGHT` rounds wait for theirs), so an event committed just after a stamp waits for the next cycle,
not for the broker's disk as well. Idle, it listens for the outbox's NOTIFY, which the changes send only then
(migration 037: a notifying commit takes a lock every other notifying commit waits for), with a sweep every
`sweep_seconds` as a backstop, and a watch on the stream wakes it when live state's events come. When the broker
does not confirm, the cursor stays: the events wait, and go out in order when it is back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
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
# Whether the changes notify the relay (migration 037): only while the publishing relay is idle, listening.
NOTIFYING = "UPDATE events_relay SET notify = $1 WHERE notify IS DISTINCT FROM $1"
# After it began to listen, the idle relay looks once more this soon (then every sweep): a change that read the
# switch just before it turned on commits without a notification.
FIRST_LOOK_SECONDS = 0.1
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
        self._written_up_to = 0
        self._stamped_before = True
        # Rounds written and not yet settled, in id order.
        self._rounds: collections.deque[_Round] = collections.deque()
        # Set while the relay is idle (or not publishing): the stream's watch then wakes it for live state's events.
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="event relay"),
            asyncio.create_task(self._watch_stream(), name="event stream watch"),
        ]

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._idle.set()
        await asyncio.gather(*self._tasks)

    async def _watch_stream(self) -> None:
        """While the publishing relay is idle, wake it when live state's stream holds an entry: it moves the
        entries itself, in its cycle, where they are given their ids."""
        while not self._stopping.is_set():
            try:
                await self._idle.wait()
                if self.publishing and await self._stream.arrived(STREAM_WAIT_SECONDS):
                    self._wake.set()
                    await self._linger(time.monotonic())
                elif not self.publishing:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), STREAM_WAIT_SECONDS)
            except FAILURES as exc:
                log.warning("watching live state's events failed, trying again: %s", exc)
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
        """Publish while there is work, a cycle every linger; listen for the outbox's notifications only when
        idle. Under load the changes notify nobody (migration 037) and the relay comes back untold; a standby
        relay tries the lock at each sweep."""
        listening = False
        notified: bool | None = None  # what the relay last told the changes: notify, or not (None: unknown)
        looked = True  # looked again shortly after it began to listen
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                written = await self._relay(conn)
                if written is None or not self.publishing:
                    # The broker refused, or another relay publishes: try again after a sweep.
                    self._idle.set()
                    listening = await self._listen(conn, listening, False)
                    await self._sweep()
                elif written or self._rounds:
                    self._idle.clear()
                    listening = await self._listen(conn, listening, False)
                    if notified is not False:
                        await conn.execute(NOTIFYING, False)
                        notified = False
                    await self._linger(started)
                elif not listening:
                    # Told to notify, listening, then once more: what committed before the LISTEN told nobody.
                    self._idle.set()
                    await conn.execute(NOTIFYING, True)
                    notified, looked = True, False
                    listening = await self._listen(conn, listening, True)
                elif not looked:
                    # A change that read the switch before it turned, and committed after that look, told
                    # nobody either: it is seen here, soon after, rather than at the sweep.
                    looked = True
                    await self._pause(FIRST_LOOK_SECONDS)
                else:
                    await self._pause()
            if self.publishing:
                await self._settle_all(conn)
        finally:
            self._forget_rounds()
            self._idle.set()
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

    async def _linger(self, since: float) -> None:
        """Let what comes meanwhile gather, until `linger_seconds` after `since` (the cycle's start): under load
        a round then carries many events, and the hot path's statements do not queue behind a round per change
        (two cores, shared with PostgreSQL). Counted from the cycle's start, the cycle's own work (the stamp, the
        write, PostgreSQL's and the broker's round trips) is not added to the wait of what comes next."""
        remaining = self._linger_seconds - (time.monotonic() - since)
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), remaining)

    async def _pause(self, seconds: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._sweep_seconds if seconds is None else seconds)
        self._wake.clear()

    async def relay_once(self, conn: Connection) -> bool:
        """Holding the lock (taking it if free), move the stream, stamp and publish until nothing waits. False
        when the broker did not confirm everything (the cursor is moved over what it confirmed in order)."""
        while True:
            written = await self._relay(conn)
            if written is None:
                return False
            if not written:
                if not self._rounds:
                    return True
                await asyncio.wait({self._rounds[0].outcomes})

    async def _relay(self, conn: Connection) -> int | None:
        """One cycle: the rounds confirmed meanwhile settled, live state's stream moved, then committed events
        stamped and written, up to `ROUNDS_IN_FLIGHT` rounds ahead of their confirms. How many events it wrote
        (nothing written with rounds unsettled is still busy); None when the broker did not confirm them all."""
        if not self.publishing:
            self.publishing = bool(await conn.fetchval(TRY_LOCK))
            if not self.publishing:
                return 0
            self._published_up_to = None
        if self._published_up_to is None:
            # Taking over, or after a failure: what was stamped and not confirmed goes out first, again.
            self._forget_rounds()
            self._published_up_to = await outbox.published_up_to(conn)
            self._written_up_to = self._published_up_to
            self._stamped_before = True
        written = 0
        try:
            if not await self._settle_done(conn):
                await self._refused(conn)
                return None
            while True:
                events = await self._next_round(conn, self._written_up_to)
                if events:
                    self._rounds.append(_Round(events, await self._write(events)))
                    self._written_up_to = events[-1].id
                    written += len(events)
                # A full round says more is waiting: write it while the broker confirms this one, up to a few
                # rounds ahead. A partial one is the last for this cycle: its confirms are settled by a next one.
                while len(self._rounds) >= ROUNDS_IN_FLIGHT:
                    if not await self._settle(conn, self._rounds.popleft()):
                        await self._refused(conn)
                        return None
                if len(events) < self._batch:
                    return written
        except BaseException:
            self._forget_rounds()  # after a failure: they go out again after the cursor
            self._published_up_to = None
            raise

    async def _refused(self, conn: Connection) -> None:
        """The broker did not confirm a round: the rounds after it go out again with it, after the cursor."""
        self._forget_rounds()
        self._published_up_to = None
        # The log serves every committed event to consumers catching up, broker or not.
        while len(await outbox.stamp(conn, self._batch)) == self._batch:
            pass

    async def _settle_done(self, conn: Connection) -> bool:
        """Settle the rounds whose confirms came, in order; False when the broker refused one."""
        while self._rounds and self._rounds[0].outcomes.done():
            if not await self._settle(conn, self._rounds.popleft()):
                return False
        return True

    async def _settle_all(self, conn: Connection) -> None:
        """Stopping: what was written is settled before the connection goes, so the next relay does not send it
        again. A failure here leaves it for the next relay (it goes out again, with its ids)."""
        with contextlib.suppress(*FAILURES):
            while self._rounds:
                if not await self._settle(conn, self._rounds.popleft()):
                    return

    def _forget_rounds(self) -> None:
        for unsettled in self._rounds:
            unsettled.outcomes.cancel()
        self._rounds.clear()

    async def _move_stream_now(self, conn: Connection, limit: int) -> list[StoredEvent]:
        """Live state's events, moved in after the stamp with their ids. Redis failing does not hold up the
        outbox's events."""
        try:
            return await self._stream.move(conn, limit)
        except RedisError as exc:
            log.warning("moving live state's events failed, publishing the outbox's: %s", exc)
            return []

    async def _next_round(self, conn: Connection, written_up_to: int) -> list[StoredEvent]:
        """The next events in id order: first those given their ids before (by a relay that died, or a round the
        broker refused), then committed ones given their ids now, then live state's moved in."""
        events: list[StoredEvent] = []
        if self._stamped_before:
            events = await outbox.page(conn, written_up_to, self._batch)
            if len(events) == self._batch:
                return events
            self._stamped_before = False
        events += await outbox.stamp(conn, self._batch - len(events))
        if len(events) < self._batch:
            events += await self._move_stream_now(conn, self._batch - len(events))
        return events

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
