"""The bus in process, for embedded mode: the same topic routing, competing consumers, redelivery on failure
and dead-lettering past the delivery limit as on RabbitMQ, without a broker, in one process.

Open it with `MemoryBus()`. Messages live in memory only: they do not survive the process, as nothing in
embedded mode does beyond the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field
from functools import cache

from contactcenter.bus import Delivery, Handler, QueueSpec
from contactcenter.errors import Unavailable

log = logging.getLogger(__name__)


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


@dataclass
class _Queue:
    spec: QueueSpec
    bindings: set[str]
    ready: asyncio.Queue[_Message] = field(default_factory=asyncio.Queue)

    def takes(self, exchange: str, routing_key: str) -> bool:
        return self.spec.exchange == exchange and any(topic_matches(key, routing_key) for key in self.bindings)


class MemoryBus:
    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._subscriptions: set[MemorySubscription] = set()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the in-process bus is closed")

    async def declare(self, spec: QueueSpec) -> None:
        self._check_open()
        self._declare(spec)

    def _declare(self, spec: QueueSpec) -> _Queue:
        queue = self._queues.get(spec.name)
        if queue is None:
            queue = self._queues[spec.name] = _Queue(spec, set())
        queue.bindings.update(spec.binding_keys)
        return queue

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, *, message_id: str, mandatory: bool = False
    ) -> None:
        self._check_open()
        if not self._route(exchange, routing_key, body, message_id) and mandatory:
            raise Unavailable(f"no queue is bound for {routing_key} on {exchange}")

    def _route(self, exchange: str, routing_key: str, body: bytes, message_id: str) -> bool:
        """Put a copy in every queue bound for the key; False when there is none (the message is dropped)."""
        targets = [queue for queue in self._queues.values() if queue.takes(exchange, routing_key)]
        for queue in targets:
            queue.ready.put_nowait(_Message(body, routing_key, message_id))
        return bool(targets)

    def _dead_letter(self, queue: _Queue, message: _Message) -> None:
        exchange = queue.spec.dead_letter_exchange
        if exchange is None or not self._route(exchange, queue.spec.name, message.body, message.message_id):
            log.warning(
                "dropping %s from %s after %d failed deliveries: no dead-letter queue takes it",
                message.message_id,
                queue.spec.name,
                message.failures,
            )

    async def subscribe(self, spec: QueueSpec, handler: Handler) -> MemorySubscription:
        self._check_open()
        subscription = MemorySubscription(self, self._declare(spec), handler)
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
        delivery = Delivery(message.body, message.routing_key, message.message_id, redelivered=message.failures > 0)
        try:
            await self._handler(delivery)
        except Exception:
            # Any failure of a handler hands the message back; the delivery limit ends a poison message.
            log.exception("handling %s from %s failed", message.message_id, self.queue.spec.name)
            self._fail(message)

    def _fail(self, message: _Message) -> None:
        message.failures += 1
        # As RabbitMQ counts: a message is delivered once plus `delivery_limit` redeliveries, then dead-lettered.
        if message.failures > self.queue.spec.delivery_limit:
            self._bus._dead_letter(self.queue, message)
        else:
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
