"""The bus in process, for embedded mode: the same topic routing, competing consumers, redelivery on
failure and dead-lettering past the delivery limit as on RabbitMQ — without a broker, in one process."""

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
    """AMQP topic matching: `*` is one dot-separated word, `#` zero or more."""
    parts = []
    for word in binding_key.split("."):
        if word == "#":
            parts.append(r"(?:[^.]+(?:\.[^.]+)*)?")
        elif word == "*":
            parts.append(r"[^.]+")
        else:
            parts.append(re.escape(word))
    pattern = r"\.".join(parts)
    # `a.#` also matches `a`: let the dot before a `#` be optional.
    pattern = pattern.replace(r"\.(?:[^.]+(?:\.[^.]+)*)?", r"(?:\.[^.]+)*")
    return re.compile(f"^{pattern}$")


@dataclass
class _Message:
    body: bytes
    routing_key: str
    message_id: str
    failures: int = 0


@dataclass
class _Queue:
    spec: QueueSpec
    messages: asyncio.Queue[_Message] = field(default_factory=asyncio.Queue)
    bindings: set[str] = field(default_factory=set)

    def matches(self, exchange: str, routing_key: str) -> bool:
        return self.spec.exchange == exchange and any(_topic_pattern(b).match(routing_key) for b in self.bindings)


class MemoryBus:
    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._subscriptions: list[MemorySubscription] = []
        self._closed = False

    async def declare(self, spec: QueueSpec) -> None:
        self._declare(spec)

    def _declare(self, spec: QueueSpec) -> _Queue:
        queue = self._queues.get(spec.name)
        if queue is None:
            queue = self._queues[spec.name] = _Queue(spec)
        queue.bindings.update(spec.binding_keys)
        return queue

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, *, message_id: str, mandatory: bool = False
    ) -> None:
        if self._closed:
            raise Unavailable("the bus is closed")
        targets = [queue for queue in self._queues.values() if queue.matches(exchange, routing_key)]
        if not targets and mandatory:
            raise Unavailable(f"no queue takes {routing_key} on {exchange}")
        for queue in targets:
            queue.messages.put_nowait(_Message(body, routing_key, message_id))

    async def subscribe(self, spec: QueueSpec, handler: Handler) -> MemorySubscription:
        if self._closed:
            raise Unavailable("the bus is closed")
        subscription = MemorySubscription(self, self._declare(spec), handler)
        self._subscriptions.append(subscription)
        return subscription

    def _dead_letter(self, queue: _Queue, message: _Message) -> None:
        exchange = queue.spec.dead_letter_exchange
        targets = [q for q in self._queues.values() if exchange and q.matches(exchange, queue.spec.name)]
        if not targets:
            log.warning("dropping %s from %s after %d failures", message.message_id, queue.spec.name, message.failures)
        for target in targets:
            target.messages.put_nowait(_Message(message.body, queue.spec.name, message.message_id))

    def _forget(self, queue: _Queue) -> None:
        if not queue.spec.shared:
            self._queues.pop(queue.spec.name, None)

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.close()
        self._subscriptions.clear()


class MemorySubscription:
    def __init__(self, bus: MemoryBus, queue: _Queue, handler: Handler) -> None:
        self._bus = bus
        self._queue = queue
        self._handler = handler
        self._in_flight: set[asyncio.Task[None]] = set()
        self._workers = [asyncio.create_task(self._work()) for _ in range(queue.spec.prefetch)]
        self._closing = False

    async def _work(self) -> None:
        while True:
            message = await self._queue.messages.get()
            handling = asyncio.create_task(self._handle(message))
            self._in_flight.add(handling)
            handling.add_done_callback(self._in_flight.discard)
            # Closing cancels the worker, not the handler: `close` waits for what is in flight.
            await asyncio.shield(handling)

    async def _handle(self, message: _Message) -> None:
        delivery = Delivery(message.body, message.routing_key, message.message_id, redelivered=message.failures > 0)
        try:
            await self._handler(delivery)
        except Exception:
            # Any failure of a handler hands the message back; the delivery limit ends a poison message.
            log.exception(
                "handling %s from %s failed; it will be redelivered", message.message_id, self._queue.spec.name
            )
            message.failures += 1
            if message.failures > self._queue.spec.delivery_limit:
                self._bus._dead_letter(self._queue, message)
            else:
                self._queue.messages.put_nowait(message)

    async def bind(self, routing_key: str) -> None:
        self._queue.bindings.add(routing_key)

    async def unbind(self, routing_key: str) -> None:
        self._queue.bindings.discard(routing_key)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._bus._forget(self._queue)
