"""The bus in process, for embedded mode: the same topic routing, competing consumers, redelivery on failure
and dead-lettering past the delivery limit as on RabbitMQ, without a broker, in one process.

Open it with `MemoryBus()`: messages live in memory only and die with the process. Embedded mode gives it a
journal (`MemoryBus(await PostgresJournal.open(pool))`), which keeps production's promise: a message routed
to a shared queue is written to PostgreSQL before its publish returns, deleted once a handler took it, and
what is left when a process dies is delivered again, in order and before anything new, once the next
process declares the queue. Journal writes that arrive together share one statement, as contacts share a
message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from contactcenter.batching import Batcher
from contactcenter.bus import Delivery, Handler, Outgoing, QueueSpec, taken_as_written
from contactcenter.bus.journal import Journal, JournalEntry
from contactcenter.errors import Unavailable

log = logging.getLogger(__name__)

# Messages written to the journal in one statement at most; more wait for the next.
JOURNAL_BATCH = 256


@cache
def _topic_pattern(binding_key: str) -> re.Pattern[str]:
    """AMQP topic matching on dot-separated words: `*` is exactly one word, `#` zero or more.

    Both sides are matched with a dot before every word (`a.b` as `.a.b`), so `#` can swallow its own dot and
    `a.#` matches `a`, `#.b` matches `b`; an empty key has no words at all, as on RabbitMQ."""
    words = binding_key.split(".") if binding_key else []
    parts = [r"(?:\.[^.]*)*" if w == "#" else r"\.[^.]*" if w == "*" else r"\." + re.escape(w) for w in words]
    return re.compile("".join(parts))


def topic_matches(binding_key: str, routing_key: str) -> bool:
    dotted = f".{routing_key}" if routing_key else ""
    return _topic_pattern(binding_key).fullmatch(dotted) is not None


@dataclass
class _Message:
    body: bytes
    routing_key: str
    message_id: str
    # Failed deliveries so far; RabbitMQ's delivery count.
    failures: int = 0
    # Its row in the journal, while a shared queue of a journaled bus holds it.
    journal_id: int | None = None
    # Read back from the journal: a process that died may have been handling it.
    restored: bool = False


@dataclass
class _Queue:
    spec: QueueSpec
    bindings: set[str]
    ready: asyncio.Queue[_Message] = field(default_factory=asyncio.Queue)

    def takes(self, exchange: str, routing_key: str) -> bool:
        return self.spec.exchange == exchange and any(topic_matches(key, routing_key) for key in self.bindings)


class MemoryBus:
    def __init__(self, journal: Journal | None = None, *, publish_timeout: float = 5.0) -> None:
        self._queues: dict[str, _Queue] = {}
        self._subscriptions: set[MemorySubscription] = set()
        self._closed = False
        self._journal = journal
        # One lane each: batches are written one after another, so queues get messages in the journal's order.
        self._journaling = Batcher(self._journal_and_route, lanes=1, max_batch=JOURNAL_BATCH, timeout=publish_timeout)
        self._settling = Batcher(self._settle, lanes=1, max_batch=JOURNAL_BATCH, timeout=publish_timeout)
        self._restoring = asyncio.Lock()

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the in-process bus is closed")

    async def declare(self, spec: QueueSpec) -> None:
        self._check_open()
        await self._open_queue(spec)

    async def unbind(self, spec: QueueSpec, binding_key: str) -> None:
        self._check_open()
        queue = await self._open_queue(replace(spec, binding_keys=()))
        queue.bindings.discard(binding_key)

    async def _open_queue(self, spec: QueueSpec) -> _Queue:
        if self._journal is not None and spec.shared:
            async with self._restoring:
                if spec.name not in self._queues:
                    self._queues[spec.name] = await self._restored_queue(self._journal, spec)
        return self._declare(spec)

    async def _restored_queue(self, journal: Journal, spec: QueueSpec) -> _Queue:
        """A shared queue with what an earlier process left in it, ahead of anything published from now on."""
        queue = _Queue(spec, set())
        left = await journal.pending(spec.name)
        for entry in left:
            queue.ready.put_nowait(
                _Message(entry.body, entry.routing_key, entry.message_id, journal_id=entry.id, restored=True)
            )
        if left:
            log.info("%d messages of %s restored from the journal", len(left), spec.name)
        return queue

    def _declare(self, spec: QueueSpec) -> _Queue:
        queue = self._queues.get(spec.name)
        if queue is None:
            queue = self._queues[spec.name] = _Queue(spec, set())
        queue.bindings.update(spec.binding_keys)
        return queue

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        mandatory: bool = False,
        content_type: str = "application/json",
    ) -> None:
        del content_type  # in one process, handlers know what they read
        self._check_open()
        if not await self._publish(exchange, _Message(body, routing_key, message_id)) and mandatory:
            raise Unavailable(f"no queue is bound for {routing_key} on {exchange}")

    async def publish_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> list[Unavailable | None]:
        del content_type
        if self._closed:
            return [Unavailable("the in-process bus is closed")] * len(messages)
        outcomes: list[Unavailable | None] = []
        for message in messages:  # one after the other: the journal keeps their order
            try:
                await self._publish(exchange, _Message(message.body, message.routing_key, message.message_id))
            except Unavailable as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        return outcomes

    async def write_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> asyncio.Future[list[Unavailable | None]]:
        """In one process a message is taken (journaled and routed) as it is written: the outcomes are known."""
        return await taken_as_written(self.publish_many(exchange, messages, content_type=content_type))

    async def _publish(self, exchange: str, message: _Message) -> bool:
        """Route `message`, journaled first if the bus has a journal; False when no queue takes it."""
        if self._journal is None:
            return self._route(exchange, message)
        try:
            return await self._journaling.call((exchange, message))
        except TimeoutError as exc:
            raise Unavailable("the bus journal was not written in time (publish)") from exc

    def _route(self, exchange: str, message: _Message) -> bool:
        """Put a copy in every queue bound for the key; False when there is none (the message is dropped)."""
        targets = self._targets(exchange, message.routing_key)
        for queue in targets:
            queue.ready.put_nowait(_Message(message.body, message.routing_key, message.message_id))
        return bool(targets)

    def _targets(self, exchange: str, routing_key: str) -> list[_Queue]:
        return [queue for queue in self._queues.values() if queue.takes(exchange, routing_key)]

    async def _journal_and_route(self, published: list[tuple[str, _Message]]) -> list[bool]:
        """Write the copies bound for shared queues to the journal in one statement, then queue every copy."""
        assert self._journal is not None
        targets = [self._targets(exchange, message.routing_key) for exchange, message in published]
        copies = [
            (queue, _Message(message.body, message.routing_key, message.message_id))
            for (_, message), queues in zip(published, targets, strict=True)
            for queue in queues
        ]
        kept = [(queue, copy) for queue, copy in copies if queue.spec.shared]
        if kept:
            entries = [JournalEntry(queue.spec.name, c.routing_key, c.message_id, c.body) for queue, c in kept]
            for (_, copy), journal_id in zip(kept, await self._journal.append(entries), strict=True):
                copy.journal_id = journal_id
        for queue, copy in copies:
            queue.ready.put_nowait(copy)
        return [bool(queues) for queues in targets]

    async def _settled(self, message: _Message) -> None:
        """A handler took the message: forget it. If the journal cannot be written, a later start-up delivers
        it again, which every handler takes as a redelivery."""
        if message.journal_id is None:
            return
        try:
            await self._settling.call(message.journal_id)
        except (TimeoutError, Unavailable) as exc:
            log.warning("the journal keeps the handled %s: %s", message.message_id, exc)

    async def _settle(self, journal_ids: list[int]) -> list[None]:
        assert self._journal is not None
        await self._journal.settle(journal_ids)
        return [None] * len(journal_ids)

    async def _dead_letter(self, queue: _Queue, message: _Message) -> None:
        exchange = queue.spec.dead_letter_exchange
        dead = _Message(message.body, queue.spec.name, message.message_id)
        if exchange is None or not await self._publish(exchange, dead):
            log.warning(
                "dropping %s from %s after %d failed deliveries: no dead-letter queue takes it",
                message.message_id,
                queue.spec.name,
                message.failures,
            )
        await self._settled(message)

    async def subscribe(self, spec: QueueSpec, handler: Handler) -> MemorySubscription:
        self._check_open()
        subscription = MemorySubscription(self, await self._open_queue(spec), handler)
        self._subscriptions.add(subscription)
        return subscription

    def _closed_subscription(self, subscription: MemorySubscription) -> None:
        self._subscriptions.discard(subscription)
        queue = subscription.queue
        if not queue.spec.shared and self._queues.get(queue.spec.name) is queue:
            del self._queues[queue.spec.name]

    async def waiting(self, spec: QueueSpec) -> int:
        self._check_open()
        queue = self._queues.get(spec.name)
        return queue.ready.qsize() if queue is not None else 0

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.close()


class MemorySubscription:
    def __init__(self, bus: MemoryBus, queue: _Queue, handler: Handler) -> None:
        self._bus = bus
        self.queue = queue
        self._handler = handler
        self._in_flight: set[asyncio.Task[None]] = set()
        # One worker per prefetch slot: at most `prefetch` handlers at once. Workers of every subscription to
        # a queue wait on the same `asyncio.Queue`, so each message goes to one of them.
        self._workers = [asyncio.create_task(self._work()) for _ in range(queue.spec.prefetch)]
        self._closed = False

    async def _work(self) -> None:
        while True:
            # Cancelling `get` at close leaves the message in the queue for the next consumer.
            message = await self.queue.ready.get()
            handling = asyncio.create_task(self._handle(message))
            self._in_flight.add(handling)
            handling.add_done_callback(self._in_flight.discard)
            # Closing cancels the worker, not the handler it runs: `close` waits for the handler instead.
            await asyncio.shield(handling)

    async def _handle(self, message: _Message) -> None:
        redelivered = message.failures > 0 or message.restored
        delivery = Delivery(message.body, message.routing_key, message.message_id, redelivered=redelivered)
        try:
            await self._handler(delivery)
        except Exception:
            # Any failure of a handler hands the message back; the delivery limit ends a poison message.
            log.exception("handling %s from %s failed", message.message_id, self.queue.spec.name)
            await self._fail(message)
        else:
            await self._bus._settled(message)

    async def _fail(self, message: _Message) -> None:
        message.failures += 1
        # As RabbitMQ counts: a message is delivered once plus `delivery_limit` redeliveries, then dead-lettered.
        if message.failures <= self.queue.spec.delivery_limit:
            self.queue.ready.put_nowait(message)
            return
        try:
            await self._bus._dead_letter(self.queue, message)
        except Unavailable as exc:
            # The dead-letter queue could not take it: it stays here, for a later delivery to try again.
            log.warning("%s stays in %s: %s", message.message_id, self.queue.spec.name, exc)
            message.failures -= 1
            self.queue.ready.put_nowait(message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._bus._closed_subscription(self)
