"""The bus on RabbitMQ through aio-pika: durable topic exchanges, quorum queues with a delivery limit and a
dead-letter exchange, publisher confirms, manual acks.

Open it with `await connect_amqp(url, publish_timeout=...)`. The connection is robust: it reconnects by itself
and restores channels, queues, bindings and consumers. Every broker round trip is bounded by the publish
timeout, and every broker failure reaches the caller as `errors.Unavailable`, whose message never holds the URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TypeVar, cast

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError, PublishError
from aiormq.abc import ChannelFrame
from pamqp.common import FieldTable

from contactcenter.bus import Delivery, Handler, Outgoing, QueueSpec
from contactcenter.bus.frames import publish_frames
from contactcenter.errors import Unavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0

T = TypeVar("T")


async def connect_amqp(url: str, *, publish_timeout: float, connect_timeout: float = CONNECT_TIMEOUT) -> AmqpBus:
    """Connect to the broker and open the publishing channel.

    Raise `Unavailable` when the broker cannot be reached or refuses us (the first connection fails fast;
    later losses are healed by reconnecting)."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect_robust(url), connect_timeout)
    except (TimeoutError, *CONNECTION_EXCEPTIONS) as exc:
        raise Unavailable(f"RabbitMQ cannot be reached: {type(exc).__name__}") from exc
    try:
        # Returned (unroutable) mandatory messages raise `PublishError` in `publish` instead of vanishing.
        channel = await asyncio.wait_for(
            connection.channel(publisher_confirms=True, on_return_raises=True), connect_timeout
        )
    except (TimeoutError, *CONNECTION_EXCEPTIONS) as exc:
        await connection.close()
        raise Unavailable(f"RabbitMQ refused a channel: {type(exc).__name__}") from exc
    return AmqpBus(connection, channel, publish_timeout=publish_timeout)


async def _bounded(operation: Awaitable[T], seconds: float, what: str) -> T:
    """Await one broker operation; a timeout or any broker failure becomes `Unavailable`."""
    try:
        async with asyncio.timeout(seconds):
            return await operation
    except (TimeoutError, PublishError, DeliveryError, *CONNECTION_EXCEPTIONS) as exc:
        raise _unavailable(exc, seconds, what) from exc


def _unavailable(exc: BaseException, seconds: float, what: str) -> Unavailable:
    """A broker failure as the bus reports it."""
    if isinstance(exc, TimeoutError | asyncio.CancelledError):
        return Unavailable(f"RabbitMQ did not answer within {seconds}s ({what})")
    if isinstance(exc, PublishError):
        return Unavailable(f"RabbitMQ returned the message: no queue is bound for it ({what})")
    if isinstance(exc, DeliveryError):
        return Unavailable(f"RabbitMQ refused the message ({what})")
    return Unavailable(f"RabbitMQ is unavailable ({what}): {type(exc).__name__}")


class AmqpBus:
    def __init__(
        self, connection: AbstractRobustConnection, publish_channel: AbstractRobustChannel, *, publish_timeout: float
    ) -> None:
        self._connection = connection
        self._publish_channel = publish_channel
        self._timeout = publish_timeout
        # Declared once, on first use, on the publishing channel, which re-declares them after a reconnect (a
        # broker without a volume comes back empty).
        self._exchanges: dict[str, asyncio.Future[AbstractRobustExchange]] = {}
        self._subscriptions: set[AmqpSubscription] = set()

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            declaring = asyncio.ensure_future(
                self._publish_channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
            )
            declaring.add_done_callback(partial(self._forget_failed_exchange, name))
            self._exchanges[name] = declaring
        return await asyncio.shield(self._exchanges[name])

    def _forget_failed_exchange(self, name: str, declaring: asyncio.Future[AbstractRobustExchange]) -> None:
        if declaring.cancelled() or declaring.exception() is not None:
            del self._exchanges[name]  # the next use declares it again

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
        properties = aiormq.spec.Basic.Properties(
            message_id=message_id,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
        )
        await _bounded(self._publish(exchange, routing_key, body, properties, mandatory), self._timeout, "publish")

    async def publish_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> list[Unavailable | None]:
        return await (await self.write_many(exchange, messages, content_type=content_type))

    async def write_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> asyncio.Future[list[Unavailable | None]]:
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[list[Unavailable | None]] = loop.create_future()
        if not messages:
            settled.set_result([])
            return settled
        deadline = loop.time() + self._timeout  # one bound for the whole batch, as for one message
        try:
            async with asyncio.timeout_at(deadline):
                channel = await self._channel_for(exchange)
                confirmations = await self._write_batch(channel, exchange, messages, content_type)
        except (TimeoutError, PublishError, DeliveryError, *CONNECTION_EXCEPTIONS) as exc:
            settled.set_result([_unavailable(exc, self._timeout, "publish")] * len(messages))
            return settled
        return asyncio.ensure_future(self._confirmed(confirmations, deadline))

    async def _confirmed(
        self, confirmations: list[asyncio.Future[aiormq.abc.ConfirmationFrameType]], deadline: float
    ) -> list[Unavailable | None]:
        _, late = await asyncio.wait(confirmations, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        for confirmation in late:
            confirmation.cancel()  # aiormq ignores the broker's answer to a cancelled confirmation
        return [self._outcome(confirmation) for confirmation in confirmations]

    @staticmethod
    async def _write_batch(
        channel: aiormq.Channel, exchange: str, messages: Sequence[Outgoing], content_type: str
    ) -> list[asyncio.Future[aiormq.abc.ConfirmationFrameType]]:
        """Every message of the batch in one write (a system call per message was a quarter of the router's
        CPU): what `aiormq.Channel.basic_publish` does for one message, for all of them under one hold of the
        channel's lock — a delivery tag and a confirmation each, in order, so the broker reads them in this
        order and its confirms (one for several, often) settle each."""
        frames: list[bytes] = []
        confirmations: list[asyncio.Future[aiormq.abc.ConfirmationFrameType]] = []
        async with channel.lock:
            first_tag = channel.delivery_tag
            for message in messages:
                channel.delivery_tag += 1
                confirmation: asyncio.Future[aiormq.abc.ConfirmationFrameType] = channel.create_future()
                channel.confirmations[channel.delivery_tag] = confirmation
                confirmations.append(confirmation)
                frames.append(
                    publish_frames(
                        channel.number,
                        exchange,
                        message.routing_key,
                        message.body,
                        content_type,
                        message.message_id,
                        channel.max_content_size,  # aiormq's own frame size rule
                    )
                )
            try:
                await channel.write_queue.put(ChannelFrame(payload=b"".join(frames), should_close=False))
            except BaseException:
                # Not written: the broker never saw these tags; give them back, as basic_publish does.
                for tag in range(first_tag + 1, channel.delivery_tag + 1):
                    channel.confirmations.pop(tag, None)
                channel.delivery_tag = first_tag
                for confirmation in confirmations:
                    confirmation.cancel()
                raise
        return confirmations

    def _outcome(self, publish: asyncio.Future[aiormq.abc.ConfirmationFrameType]) -> Unavailable | None:
        if publish.cancelled():
            return _unavailable(asyncio.CancelledError(), self._timeout, "publish")
        failure = publish.exception()
        if failure is not None:
            return _unavailable(failure, self._timeout, "publish")
        confirmation = publish.result()
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            return Unavailable(f"RabbitMQ did not confirm the message (publish): {type(confirmation).__name__}")
        return None

    async def _channel_for(self, exchange: str) -> aiormq.Channel:
        """The publishing channel's current channel, the exchange declared on it."""
        await self._exchange(exchange)
        if self._publish_channel.is_closed:  # closed for good (or reconnecting): say so now, as aio-pika does
            raise aiormq.exceptions.ChannelInvalidStateError("the publishing channel is closed")
        return cast(aiormq.Channel, await self._publish_channel.get_underlay_channel())  # `wait` is aiormq.Channel's

    async def _publish(
        self, exchange: str, routing_key: str, body: bytes, properties: aiormq.spec.Basic.Properties, mandatory: bool
    ) -> None:
        channel = await self._channel_for(exchange)
        # aio-pika's `Exchange.publish` keeps the channel's lock until the frame is written and drained, so
        # concurrent publishes leave one per turn of the loop, each waiter rescanning the lock's queue. Without
        # the drain the lock is let go once the frame is queued; the connection's bounded write queue still
        # holds back a publisher that runs ahead, and the broker's confirm is awaited all the same.
        confirmation = await channel.basic_publish(
            body, exchange=exchange, routing_key=routing_key, properties=properties, mandatory=mandatory, wait=False
        )
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise Unavailable(f"RabbitMQ did not confirm the message (publish): {type(confirmation).__name__}")

    async def declare(self, spec: QueueSpec) -> None:
        await _bounded(self._declare(spec), self._timeout, f"declare {spec.name}")

    async def _declare(self, spec: QueueSpec) -> None:
        # A channel of its own: a refused declaration closes the channel, and the publishing one must live on.
        channel = await self._connection.channel()
        try:
            await self._declare_on(channel, spec)
        finally:
            await channel.close()

    async def _declare_on(self, channel: AbstractChannel, spec: QueueSpec) -> tuple[AbstractExchange, AbstractQueue]:
        exchange = await self._exchange(spec.exchange)
        arguments: FieldTable = {}
        if spec.dead_letter_exchange:
            await self._exchange(spec.dead_letter_exchange)
            arguments["x-dead-letter-exchange"] = spec.dead_letter_exchange
            arguments["x-dead-letter-routing-key"] = spec.name
        if spec.shared:
            arguments["x-queue-type"] = "quorum"
            # RabbitMQ 3.10 sets no limit by default: without one a poison message loops forever.
            arguments["x-delivery-limit"] = spec.delivery_limit
            if spec.single_active_consumer:
                arguments["x-single-active-consumer"] = True
            queue = await channel.declare_queue(spec.name, durable=True, arguments=arguments)
        else:
            # Classic queues know no delivery limit: the subscription counts failures itself (`_may_retry`).
            queue = await channel.declare_queue(
                spec.name, durable=False, exclusive=True, auto_delete=True, arguments=arguments
            )
        for key in spec.binding_keys:
            await queue.bind(exchange, key)
        return exchange, queue

    async def unbind(self, spec: QueueSpec, binding_key: str) -> None:
        await _bounded(self._unbind(spec, binding_key), self._timeout, f"unbind {spec.name}")

    async def _unbind(self, spec: QueueSpec, binding_key: str) -> None:
        channel = await self._connection.channel()
        try:
            await self._declare_on(channel, replace(spec, binding_keys=()))
            underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
            await underlay.queue_unbind(queue=spec.name, exchange=spec.exchange, routing_key=binding_key)
        finally:
            await channel.close()

    async def subscribe(self, spec: QueueSpec, handler: Handler) -> AmqpSubscription:
        return await _bounded(self._subscribe(spec, handler), self._timeout, f"subscribe {spec.name}")

    async def _subscribe(self, spec: QueueSpec, handler: Handler) -> AmqpSubscription:
        channel = await self._connection.channel()
        try:
            await channel.set_qos(prefetch_count=spec.prefetch)
            exchange, queue = await self._declare_on(channel, spec)
            subscription = AmqpSubscription(
                channel, exchange, queue, spec, handler, timeout=self._timeout, on_closed=self._subscriptions.discard
            )
            await subscription.start()
        except BaseException:
            await channel.close()
            raise
        self._subscriptions.add(subscription)
        return subscription

    async def waiting(self, spec: QueueSpec) -> int:
        return await _bounded(self._waiting(spec), self._timeout, f"count {spec.name}")

    async def _waiting(self, spec: QueueSpec) -> int:
        # A channel of its own: a passive declaration of a queue that is gone closes its channel.
        channel = await self._connection.channel()
        try:
            queue = await channel.declare_queue(spec.name, passive=True)
        finally:
            await channel.close()
        return int(queue.declaration_result.message_count or 0)

    async def ping(self) -> bool:
        if self._connection.is_closed or not self._connection.connected.is_set():
            return False
        try:
            # A robust connection looks open while it reconnects: ask the broker itself, on a channel of its own
            # (aiormq closes the channel of a call cut short by the timeout).
            async with asyncio.timeout(self._timeout):
                channel = await self._connection.channel()
                await channel.close()
        except (TimeoutError, *CONNECTION_EXCEPTIONS) as exc:
            log.info("RabbitMQ does not answer: %s", type(exc).__name__)
            return False
        return True

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        await self._connection.close()


class AmqpSubscription:
    def __init__(
        self,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        queue: AbstractQueue,
        spec: QueueSpec,
        handler: Handler,
        *,
        timeout: float,
        on_closed: Callable[[AmqpSubscription], None],
    ) -> None:
        self._channel = channel
        self._exchange = exchange
        self._queue = queue
        self._spec = spec
        self._handler = handler
        self._timeout = timeout
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._on_closed = on_closed
        # Failed deliveries per message id, for a private queue only: the broker does not count them there, and
        # this subscription, the queue's only consumer, sees every delivery.
        self._failures: dict[str, int] = {}
        # Deliveries not yet settled, per channel (a reconnect brings a new channel with new delivery tags), in
        # the order the broker sent them, each True once its handler succeeded. Successes are acknowledged
        # together (`_send_acks`): a run of handled deliveries at the head costs one `multiple` ack.
        self._unsettled: dict[aiormq.abc.AbstractChannel, dict[int, bool]] = {}
        self._acking: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # The channel is read now: once closed, aio-pika no longer tells which one the message came on.
        channel = message.channel
        self._unsettled.setdefault(channel, {})[_tag(message)] = False
        # The handler runs in a task of our own: aiormq cancels its callback tasks when the channel closes, and
        # a handler cut half-way is worse than one whose ack is lost. `close` waits for these tasks.
        task = asyncio.create_task(self._handle(message, channel))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, message: AbstractIncomingMessage, channel: aiormq.abc.AbstractChannel) -> None:
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
            log.exception("handling %s from %s failed", delivery.message_id, self._spec.name)
            await self._reject(message, channel, requeue=self._may_retry(delivery.message_id))
        else:
            self._failures.pop(delivery.message_id, None)
            self._acknowledge(message, channel)

    def _may_retry(self, message_id: str) -> bool:
        """Whether a failed message goes back to the queue; past the limit it is dead-lettered (or dropped)."""
        if self._spec.shared:
            return True  # the quorum queue counts deliveries and dead-letters by itself
        failures = self._failures.pop(message_id, 0) + 1
        if failures <= self._spec.delivery_limit:
            self._failures[message_id] = failures
            return True
        log.warning("%s from %s failed %d times: dead-lettering it", message_id, self._spec.name, failures)
        return False

    def _acknowledge(self, message: AbstractIncomingMessage, channel: aiormq.abc.AbstractChannel) -> None:
        unsettled = self._unsettled.get(channel)
        if unsettled is None:
            _ack_lost(self._spec.name, [_tag(message)], "channel closed")
            return
        unsettled[_tag(message)] = True
        if self._acking is None or self._acking.done():
            self._acking = asyncio.create_task(self._send_acks())

    async def _send_acks(self) -> None:
        """Acknowledge every handled delivery: the run at the head of each channel with one `multiple` ack, the
        rest (behind a delivery still being handled) one by one. Runs until nothing handled is left."""
        await asyncio.sleep(0)  # handlers finishing in this turn of the loop go out with these
        while True:
            sent = False
            for channel, unsettled in list(self._unsettled.items()):
                if channel.is_closed:
                    del self._unsettled[channel]
                    _ack_lost(self._spec.name, [tag for tag, handled in unsettled.items() if handled], "channel closed")
                    continue
                head = None
                while _head_handled(unsettled):
                    head = next(iter(unsettled))
                    del unsettled[head]
                behind = [tag for tag, handled in unsettled.items() if handled]
                for tag in behind:
                    del unsettled[tag]
                try:
                    if head is not None:
                        await channel.basic_ack(head, multiple=True)
                    for tag in behind:
                        await channel.basic_ack(tag)
                except CONNECTION_EXCEPTIONS as exc:
                    _ack_lost(self._spec.name, [*([head] if head is not None else []), *behind], type(exc).__name__)
                sent = sent or head is not None or bool(behind)
            if not sent:
                return

    async def _reject(
        self, message: AbstractIncomingMessage, channel: aiormq.abc.AbstractChannel, *, requeue: bool
    ) -> None:
        """Hand a failed delivery back (or dead-letter it). It stays unsettled until the nack is on its way, so
        no `multiple` ack sent meanwhile can cover it."""
        try:
            await message.nack(requeue=requeue)
        except CONNECTION_EXCEPTIONS as exc:
            log.warning(
                "could not nack %s on %s (%s); the broker will redeliver it",
                message.message_id,
                self._spec.name,
                type(exc).__name__,
            )
        unsettled = self._unsettled.get(channel)
        if unsettled is not None:
            unsettled.pop(_tag(message), None)
            if _head_handled(unsettled) and (self._acking is None or self._acking.done()):
                self._acking = asyncio.create_task(self._send_acks())  # it held back handled ones behind it

    async def close(self) -> None:
        if self._spec.single_active_consumer and self._consumer_tag is not None:
            # Cancelling would make the next consumer active while this one still holds deliveries, which the next
            # would then get after newer ones. Closing the channel hands them back first, in queue order, then
            # the next consumer takes over; handlers still running lose their acks (redelivered: idempotent).
            self._consumer_tag = None
            try:
                await _bounded(self._channel.close(), self._timeout, f"close the consumer of {self._spec.name}")
            except Unavailable as exc:
                log.warning("%s", exc.message)  # the broker requeues what it had sent us all the same
        if self._consumer_tag is not None:
            tag, self._consumer_tag = self._consumer_tag, None
            try:
                await _bounded(self._queue.cancel(tag), self._timeout, f"cancel the consumer of {self._spec.name}")
            except Unavailable as exc:
                # Closing the channel below stops the consumer too; the broker requeues what it had sent us.
                log.warning("%s", exc.message)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._acking is not None:
            await self._acking
        if not self._channel.is_closed:
            await self._channel.close()
        self._on_closed(self)


def _tag(message: AbstractIncomingMessage) -> int:
    assert message.delivery_tag is not None, "a consumer with manual acks gets a delivery tag with each message"
    return message.delivery_tag


def _head_handled(unsettled: dict[int, bool]) -> bool:
    """Whether the oldest unsettled delivery has been handled (and may be acknowledged)."""
    for handled in unsettled.values():
        return handled
    return False


def _ack_lost(queue: str, tags: list[int], why: str) -> None:
    if tags:
        # The channel that delivered them is gone (a reconnect replaced it): the broker has requeued the
        # messages and redelivers them, marked redelivered, so the handlers' effects must be idempotent.
        log.warning("could not ack %d deliveries on %s (%s); the broker will redeliver them", len(tags), queue, why)
