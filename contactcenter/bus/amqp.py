"""The bus on RabbitMQ through aio-pika: durable topic exchanges, quorum queues with a delivery limit and a
dead-letter exchange, publisher confirms, manual acks. A robust connection reconnects by itself; acks of
deliveries from a channel lost meanwhile fail, the message is redelivered, and our handlers are idempotent.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from contactcenter.bus import Delivery, Handler, QueueSpec
from contactcenter.errors import Unavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
# What a broker that is gone or refuses looks like to aio-pika and aiormq.
_BROKER_ERRORS = (
    aio_pika.exceptions.AMQPError,
    aiormq.exceptions.AMQPError,
    ConnectionError,
    OSError,
    RuntimeError,  # aiormq: "Connection closed" on a channel of a closed connection
)


async def connect_amqp(url: str, *, publish_timeout: float) -> AmqpBus:
    """Connect to the broker; raise `Unavailable` (without the URL, which holds a password) when it is not there."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect_robust(url), CONNECT_TIMEOUT)
    except (TimeoutError, *_BROKER_ERRORS) as exc:
        raise Unavailable(f"RabbitMQ cannot be reached: {type(exc).__name__}") from exc
    bus = AmqpBus(connection, publish_timeout=publish_timeout)
    await bus.open()
    return bus


class AmqpBus:
    def __init__(self, connection: AbstractRobustConnection, *, publish_timeout: float) -> None:
        self._connection = connection
        self._publish_timeout = publish_timeout
        self._publish_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._subscriptions: list[AmqpSubscription] = []

    async def open(self) -> None:
        # Returned (unroutable) mandatory messages raise in `publish` instead of vanishing.
        self._publish_channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)

    async def _exchange(self, name: str, channel: AbstractChannel | None = None) -> AbstractExchange:
        if channel is not None:
            return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        if name not in self._exchanges:
            assert self._publish_channel is not None, "open() first"
            self._exchanges[name] = await self._publish_channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchanges[name]

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, *, message_id: str, mandatory: bool = False
    ) -> None:
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            async with asyncio.timeout(self._publish_timeout):
                target = await self._exchange(exchange)
                confirmation = await target.publish(message, routing_key, mandatory=mandatory)
        except TimeoutError as exc:
            raise Unavailable(f"the broker did not confirm within {self._publish_timeout}s") from exc
        except aio_pika.exceptions.DeliveryError as exc:
            raise Unavailable(f"the broker returned the message ({routing_key}): no queue takes it") from exc
        except _BROKER_ERRORS as exc:
            raise Unavailable(f"the broker is unavailable: {type(exc).__name__}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise Unavailable("the broker did not accept the message")

    async def declare(self, spec: QueueSpec) -> None:
        channel = await self._connection.channel()
        try:
            await _declare(channel, spec)
        finally:
            await channel.close()

    async def subscribe(self, spec: QueueSpec, handler: Handler) -> AmqpSubscription:
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=spec.prefetch)
        exchange, queue = await _declare(channel, spec)
        subscription = AmqpSubscription(channel, exchange, queue, spec, handler)
        await subscription.start()
        self._subscriptions.append(subscription)
        return subscription

    async def ping(self) -> bool:
        return (
            not self._connection.is_closed and self._publish_channel is not None and not self._publish_channel.is_closed
        )

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        await self._connection.close()


async def _declare(channel: AbstractChannel, spec: QueueSpec) -> tuple[AbstractExchange, AbstractQueue]:
    exchange = await channel.declare_exchange(spec.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    if spec.shared:
        arguments: dict[str, str | int] = {"x-queue-type": "quorum", "x-delivery-limit": spec.delivery_limit}
        if spec.dead_letter_exchange:
            await channel.declare_exchange(spec.dead_letter_exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            arguments["x-dead-letter-exchange"] = spec.dead_letter_exchange
            arguments["x-dead-letter-routing-key"] = spec.name
        queue = await channel.declare_queue(spec.name, durable=True, arguments=arguments)  # type: ignore[arg-type]
    else:
        queue = await channel.declare_queue(spec.name, durable=False, exclusive=True, auto_delete=True)
    for key in spec.binding_keys:
        await queue.bind(exchange, key)
    return exchange, queue


class AmqpSubscription:
    def __init__(
        self,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        queue: AbstractQueue,
        spec: QueueSpec,
        handler: Handler,
    ) -> None:
        self._channel = channel
        self._exchange = exchange
        self._queue = queue
        self._spec = spec
        self._handler = handler
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aio-pika awaits this callback before reading the next frame: run the handler as its own task so
        # up to `prefetch` deliveries are handled at once.
        task = asyncio.create_task(self._handle(message))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        delivery = Delivery(
            body=message.body,
            routing_key=message.routing_key or "",
            message_id=message.message_id or "",
            redelivered=bool(message.redelivered),
        )
        try:
            await self._handler(delivery)
        except Exception:
            # Any failure of a handler hands the message back; the delivery limit ends a poison message.
            log.exception("handling %s from %s failed; it will be redelivered", delivery.message_id, self._spec.name)
            await self._settle(message, ack=False)
        else:
            await self._settle(message, ack=True)

    async def _settle(self, message: AbstractIncomingMessage, *, ack: bool) -> None:
        try:
            if ack:
                await message.ack()
            else:
                await message.nack(requeue=True)
        except _BROKER_ERRORS as exc:
            # The channel was replaced by a reconnect: the broker redelivers the message by itself.
            log.warning(
                "could not settle %s on %s (%s); it will be redelivered", message.message_id, self._spec.name, exc
            )

    async def bind(self, routing_key: str) -> None:
        await self._queue.bind(self._exchange, routing_key)

    async def unbind(self, routing_key: str) -> None:
        if not self._channel.is_closed:
            await self._queue.unbind(self._exchange, routing_key)

    async def close(self) -> None:
        if self._consumer_tag is not None and not self._channel.is_closed:
            try:
                await self._queue.cancel(self._consumer_tag)
            except _BROKER_ERRORS as exc:
                log.warning("cancelling the consumer of %s failed: %s", self._spec.name, exc)
            self._consumer_tag = None
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if not self._channel.is_closed:
            await self._channel.close()
