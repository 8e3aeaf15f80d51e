"""The bus port: publish with the broker's confirm, consume with ack.

Two adapters are one: `amqp.AmqpBus` (RabbitMQ through aio-pika) and `memory.MemoryBus` (in-process, for
embedded mode, where `journal.PostgresJournal` keeps its shared queues across a restart). Both pass
`tests/contract/test_bus.py`. Exchanges are durable topic exchanges, declared on
first use by either side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from contactcenter.errors import Unavailable


@dataclass(frozen=True)
class QueueSpec:
    """A queue and what it is bound to.

    `shared` queues are durable (quorum queues on RabbitMQ) and read by competing consumers: every message
    is handled by one of them, and survives a restart. A queue that is not shared belongs to the process
    that declared it and is gone with it (the gateway's queue for the agents it holds).
    A message is delivered at most `delivery_limit + 1` times, as RabbitMQ counts: once, then once per
    failure up to the limit; the failure past it sends it to `dead_letter_exchange` (if set) with the
    queue's name as routing key, and is no longer redelivered.
    A `single_active_consumer` shared queue hands its messages to one consumer at a time, in queue order; the
    next takes over when it is gone (RabbitMQ's `x-single-active-consumer`). The in-process bus has one
    process, whose subscriptions compete as ever.
    """

    name: str
    exchange: str
    binding_keys: tuple[str, ...] = ()
    shared: bool = True
    prefetch: int = 32
    delivery_limit: int = 5
    dead_letter_exchange: str | None = None
    single_active_consumer: bool = False


@dataclass(frozen=True)
class Delivery:
    body: bytes
    routing_key: str
    message_id: str
    # True when an earlier delivery of this message was not acknowledged (a failed handler, a lost consumer).
    redelivered: bool


@dataclass(frozen=True)
class Outgoing:
    """One message of a batch (`Bus.publish_many`)."""

    routing_key: str
    body: bytes
    message_id: str


async def taken_as_written(publishing: Awaitable[list[Unavailable | None]]) -> asyncio.Future[list[Unavailable | None]]:
    """`Bus.write_many` for a bus whose messages are taken as they are written (`publish_many`): the outcomes,
    known already."""
    outcomes: asyncio.Future[list[Unavailable | None]] = asyncio.get_running_loop().create_future()
    outcomes.set_result(await publishing)
    return outcomes


# A handler that returns acknowledges the message; one that raises hands it back for redelivery.
Handler = Callable[[Delivery], Awaitable[None]]


class Subscription(Protocol):
    async def close(self) -> None:
        """Stop consuming; deliveries in progress finish first."""


class Bus(Protocol):
    async def declare(self, spec: QueueSpec) -> None:
        """Create the exchange, queue and bindings (idempotent), so no message is dropped before a consumer comes."""

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
        """Return once the broker has taken the message. Raise `errors.Unavailable` when it does not
        confirm within the bus's publish timeout, or when `mandatory` and no queue is bound for the key.
        `content_type` is the message's (events are `application/cloudevents+json`)."""

    async def publish_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> list[Unavailable | None]:
        """Publish `messages` one after the other, as `publish` would, but with the broker's confirms awaited
        together rather than each before the next: a queue receives them in this order. For each message, None
        once the broker has taken it, or why it did not (within the publish timeout); never raises for the
        broker. A failure is the message's own: a later one may have been taken all the same."""

    async def write_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> asyncio.Future[list[Unavailable | None]]:
        """`publish_many` in two steps: return once `messages` are handed to the broker, after those of every
        call that returned before this one began, with the future of their outcomes (as `publish_many` gives
        them, the broker's confirms). A publisher writes its next batch while the broker confirms the last,
        and a queue still receives both in order."""

    async def subscribe(self, spec: QueueSpec, handler: Handler) -> Subscription:
        """Declare `spec` and start calling `handler` for its messages, at most `spec.prefetch` at once."""

    async def unbind(self, spec: QueueSpec, binding_key: str) -> None:
        """Stop routing `binding_key` to the queue `spec` (declared first if need be; idempotent): messages
        published from then on do not reach it through that key. What the queue holds stays."""

    async def waiting(self, spec: QueueSpec) -> int:
        """Messages ready in the declared queue `spec` (not those out with a consumer): a metric's reading."""

    async def ping(self) -> bool:
        """True when the broker answers (readiness)."""

    async def close(self) -> None: ...
