"""The webhook dispatcher (router role, and `all`): consumes the events exchange through its own durable queue
and records a delivery per matching webhook before it acknowledges the event — nothing is lost if it dies —
then sends each webhook's line with a worker of its own, so one slow or dead receiver delays nobody else.

Each webhook has one delivery in flight at a time, which keeps its deliveries in event order; a worker holds
the webhook's lease in PostgreSQL, so several dispatchers never send one webhook's line at once. Workers are
started when an event is recorded here, and by a scan for lines left by another process or a replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass

import asyncpg

from contactcenter.answers import SERVICE_ERRORS
from contactcenter.bus import Bus, Delivery, QueueSpec, Subscription
from contactcenter.errors import ContactCenterError, Invalid
from contactcenter.metrics import WebhookMetrics
from contactcenter.webhooks.backoff import retry_delay
from contactcenter.webhooks.deliveries import Deliveries, Pending
from contactcenter.webhooks.registry import Webhooks
from contactcenter.webhooks.sender import DeliverySender

log = logging.getLogger(__name__)

# What a worker may meet when PostgreSQL goes away under it: it stops, and the next scan starts it again.
STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ContactCenterError)
# What a lease adds to the time of a send: the bookkeeping around it (PostgreSQL round trips, a slow host).
LEASE_MARGIN_SECONDS = 2.0
# How long an event waits for PostgreSQL before its recording is tried again, doubling up to the last.
FIRST_PAUSE, LAST_PAUSE = 0.1, 2.0


# How often a worker sending a line looks at its length (and after each failed try): a line grows past its bound
# by what comes in meanwhile at most.
BOUND_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    retries: int  # tries after the first before a delivery is parked
    base_seconds: float
    max_seconds: float
    max_pending: int  # deliveries a webhook may have waiting; past them it is suspended (`_suspend_if_too_long`)


class WebhookDispatcher:
    def __init__(
        self,
        *,
        bus: Bus,
        queue: QueueSpec,
        deliveries: Deliveries,
        webhooks: Webhooks,
        sender: DeliverySender,
        retry: RetryPolicy,
        scan_seconds: float,
        send_timeout: float,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self._bus = bus
        self._queue = queue
        self._deliveries = deliveries
        self._webhooks = webhooks
        self._sender = sender
        self._retry = retry
        self._scan_seconds = scan_seconds
        self._metrics = metrics
        # A worker renews its lease before each send, and every third of it while it waits for a retry: a lease
        # need only outlast one send (its timeout) and its bookkeeping. A killed dispatcher's lines pass to another
        # router once it lapses (30 s before; 12 s with the default 5 s timeout).
        self._lease_seconds = 2 * send_timeout + LEASE_MARGIN_SECONDS
        self._owner = uuid.uuid4()
        self._stopping = asyncio.Event()
        self._workers: dict[uuid.UUID, _Worker] = {}
        # Events are recorded one at a time, in the order the queue hands them over.
        self._recording = asyncio.Lock()
        self._subscription: Subscription | None = None
        self._scan: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subscription = await self._bus.subscribe(self._queue, self.record)
        self._scan = asyncio.create_task(self._scan_for_work(), name="webhook scan")

    async def stop(self) -> None:
        self._stopping.set()  # first: an event waiting for PostgreSQL is handed back, and the subscription closes
        if self._subscription is not None:
            await self._subscription.close()
        if self._scan is not None:
            await self._scan
        # Workers see the stop at once, even in the middle of a send (`_send`), and let go of their leases.
        await asyncio.gather(*(worker.task for worker in self._workers.values()), return_exceptions=True)

    async def record(self, delivery: Delivery) -> None:
        """The bus handler: returning acknowledges the event, so its deliveries are stored first.

        PostgreSQL away is waited for, the event held and the ones behind it waiting: handed back, it would come
        again at once and, past the delivery limit, rest among the dead letters; and the entity's next events,
        recorded meanwhile, would be sent before it."""
        event_id, sequence = _event_id(delivery.body)
        pause = FIRST_PAUSE
        async with self._recording:
            while True:
                try:
                    woken = await self._deliveries.record(delivery.routing_key, event_id, sequence, delivery.body)
                    break
                except SERVICE_ERRORS as exc:
                    if self._stopping.is_set():
                        raise  # handed back: the next dispatcher records it, still ahead of those behind it
                    log.warning("recording event %s waits for PostgreSQL: %s", event_id, type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), pause)
                pause = min(pause * 2, LAST_PAUSE)
        for webhook_id in woken:
            self._wake(webhook_id)

    def _wake(self, webhook_id: uuid.UUID) -> None:
        if self._stopping.is_set():
            return
        worker = self._workers.get(webhook_id)
        if worker is None:
            worker = self._workers[webhook_id] = _Worker(webhook_id)
            worker.task = asyncio.create_task(self._send_line(worker), name=f"webhook {webhook_id}")
        worker.wakeup.set()

    async def _scan_for_work(self) -> None:
        while not self._stopping.is_set():
            try:
                for webhook_id in await self._deliveries.webhooks_with_work():
                    self._wake(webhook_id)
            except STORE_ERRORS as exc:
                log.warning("looking for webhook deliveries failed, trying again: %s", type(exc).__name__)
            try:
                await self._webhooks.rebind_every_pattern()
            except STORE_ERRORS as exc:
                log.warning("binding the webhooks' patterns again failed, trying again: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._scan_seconds)

    async def _send_line(self, worker: _Worker) -> None:
        """Send one webhook's deliveries in order until its line is empty (or another dispatcher has it)."""
        webhook_id = worker.webhook_id
        try:
            while not self._stopping.is_set():
                worker.wakeup.clear()
                if not await self._deliveries.take_lease(webhook_id, self._owner, self._lease_seconds):
                    return
                head = await self._deliveries.head(webhook_id)
                if head is None:
                    if worker.wakeup.is_set():  # an event recorded while we looked
                        continue
                    return
                # Only a line whose head failed may be suspended: a receiver that acknowledges is catching up.
                failing = head.attempts > 0 and time.monotonic() >= worker.next_bound_check
                if failing and await self._suspend_if_too_long(worker):
                    continue
                if head.wait_seconds > 0:
                    # Waiting renews the lease now and then, and a replay or a stop cuts it short.
                    await self._pause(worker, min(head.wait_seconds, self._lease_seconds / 3))
                    continue
                if not await self._send(webhook_id, head):
                    worker.next_bound_check = 0.0  # the line may be growing behind a receiver that stopped
        except STORE_ERRORS as exc:
            log.warning("webhook %s: sending stopped, the next scan resumes it: %s", webhook_id, type(exc).__name__)
        finally:
            with contextlib.suppress(*STORE_ERRORS):
                await self._deliveries.release_lease(webhook_id, self._owner)
            del self._workers[webhook_id]
            if worker.wakeup.is_set():  # an event recorded while the lease was let go
                self._wake(webhook_id)

    async def _suspend_if_too_long(self, worker: _Worker) -> bool:
        """A receiver that stays dead would grow its line without end: while the head of the line is failing and
        the line is past `max_pending`, the webhook is suspended, its line parked for an admin's replay, and the
        events after it are no longer recorded for it until then (the event log keeps them: docs/webhooks.md).
        A receiver that acknowledges is never suspended, however long the line a replay gave it."""
        worker.next_bound_check = time.monotonic() + BOUND_CHECK_SECONDS
        bound = self._retry.max_pending
        look = await self._deliveries.line_longer_than(worker.webhook_id, bound)
        if look is None or not look.longer:
            return False
        parked = await self._deliveries.suspend(worker.webhook_id, look)
        if parked:
            if self._metrics is not None:
                self._metrics.suspensions.inc()
            log.warning(
                "webhook %s: more than %d deliveries waiting (CC_WEBHOOK_MAX_PENDING): suspended, its %d deliveries "
                "parked and its events no longer recorded until an admin replays it",
                worker.webhook_id,
                bound,
                parked,
            )
        return True

    async def _pause(self, worker: _Worker, seconds: float) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        wake = asyncio.ensure_future(worker.wakeup.wait())
        try:
            await asyncio.wait((stop, wake), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    async def _send(self, webhook_id: uuid.UUID, head: Pending) -> bool:
        """Send the head of the line; False when the receiver did not acknowledge it."""
        destination = await self._webhooks.destination(webhook_id)
        if destination is None:
            return True  # deleted meanwhile, with its deliveries
        sending = asyncio.ensure_future(self._sender.send(webhook_id, destination, head.body))
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait((sending, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not sending.done():
            # Stopping does not wait for a receiver that takes its time: the delivery stays in line and goes out
            # again after the restart (at least once, as promised).
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            return True
        outcome = sending.result()
        if outcome.acknowledged:
            assert outcome.status is not None
            await self._deliveries.delivered(head.id, outcome.status)
            return True
        failures = head.attempts + 1
        park = failures > self._retry.retries
        delay = retry_delay(
            failures, base=self._retry.base_seconds, cap=self._retry.max_seconds, retry_after=outcome.retry_after
        )
        await self._deliveries.failed(head.id, outcome.status, retry_in=0.0 if park else delay, park=park)
        if park:
            log.warning("webhook %s: a delivery failed %d times and is parked until a replay", webhook_id, failures)
        return False


class _Worker:
    def __init__(self, webhook_id: uuid.UUID) -> None:
        self.webhook_id = webhook_id
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None]
        self.next_bound_check = 0.0  # `time.monotonic()` when the line's length is looked at next


def _event_id(body: bytes) -> tuple[str, int]:
    """The event's id and its number (ids are decimal, ascending per entity). A message that is no event is
    refused: the bus redelivers it up to its limit, then dead-letters it for an operator."""
    try:
        event = json.loads(body)
        event_id = event["id"]
        return event_id, int(event_id)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise Invalid("an event on the bus has no decimal id; it cannot be delivered in order") from exc
