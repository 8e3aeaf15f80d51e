"""The bus contract: every test runs against RabbitMQ (aio-pika), the in-process bus and the in-process bus with
its PostgreSQL journal (embedded mode's) alike; the few at the end play a failing network between us and
RabbitMQ, which only the AMQP adapter has. The journal's own promise, a restart, is in `test_bus_journal.py`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

import aio_pika
import pytest
from yarl import URL

from contactcenter.bus import Bus, Delivery, Outgoing, QueueSpec
from contactcenter.bus.amqp import connect_amqp
from contactcenter.bus.journal import PostgresJournal
from contactcenter.bus.memory import MemoryBus
from contactcenter.errors import Unavailable
from contactcenter.store import open_pool
from tests.inbox import Inbox


@dataclass
class Names:
    """The test's own exchange and queue names, deleted from RabbitMQ afterwards."""

    namespace: str
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def exchange(self, name: str) -> str:
        full = f"{self.namespace}.{name}"
        self.exchanges.append(full)
        return full

    def queue(self, name: str) -> str:
        full = f"{self.namespace}.{name}"
        self.queues.append(full)
        return full

    def private_queue(self) -> str:
        """A per-process name, as the gateway's; RabbitMQ deletes these queues by itself."""
        return f"{self.namespace}.gateway.{uuid.uuid4().hex}"


@pytest.fixture
async def names(namespace: str, amqp_url: str) -> AsyncIterator[Names]:
    made = Names(namespace)
    yield made
    connection = await aio_pika.connect(amqp_url)
    try:
        for queue in made.queues:
            # Quorum queues refuse `if_unused` (docs/design.md); a refusal closes the channel, hence one per call.
            channel = await connection.channel()
            await channel.queue_delete(queue, if_unused=False, if_empty=False)
        for exchange in made.exchanges:
            channel = await connection.channel()
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()


@pytest.fixture(params=["amqp", "memory", "journaled"])
async def bus(
    request: pytest.FixtureRequest, amqp_url: str, database_url: str, database_schema: str, names: Names
) -> AsyncIterator[Bus]:
    # Depends on `names` so that the bus, and its private queues, are closed before the clean-up runs.
    async with contextlib.AsyncExitStack() as stack:
        opened: Bus
        if request.param == "amqp":
            opened = await connect_amqp(amqp_url, publish_timeout=5)
        elif request.param == "memory":
            opened = MemoryBus()
        else:
            pool = await open_pool(database_url, schema=database_schema)
            stack.push_async_callback(pool.close)
            opened = MemoryBus(await PostgresJournal.open(pool), publish_timeout=5)
        yield opened
        await opened.close()


async def _publish(bus: Bus, exchange: str, key: str, body: bytes, mandatory: bool = False) -> None:
    await bus.publish(exchange, key, body, message_id=uuid.uuid4().hex, mandatory=mandatory)


async def _settled(bus: Bus, exchange: str, inbox: Inbox, count: int) -> None:
    """Proof that nothing more is coming: a marker published after the rest arrives as message `count + 1`."""
    await _publish(bus, exchange, "marker", b"marker")
    await inbox.wait_for(count + 1)


async def _eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_published_message_reaches_the_subscriber_and_is_acknowledged(bus: Bus, names: Names) -> None:
    exchange = names.exchange("interactions")
    spec = QueueSpec(names.queue("router"), exchange, ("interaction.#", "marker"))
    inbox = Inbox()
    subscription = await bus.subscribe(spec, inbox)
    await _publish(bus, exchange, "interaction.sms.inbound", b"hello")
    [delivery] = await inbox.wait_for(1)
    assert (delivery.body, delivery.routing_key, delivery.redelivered) == (b"hello", "interaction.sms.inbound", False)
    assert delivery.message_id
    await subscription.close()

    # Acknowledged: the next consumer of the queue does not get it again, only what came later.
    later = Inbox()
    subscription = await bus.subscribe(spec, later)
    await _settled(bus, exchange, later, 0)
    assert later.bodies() == [b"marker"]
    await subscription.close()


async def test_messages_wait_in_a_declared_queue_until_a_consumer_comes(bus: Bus, names: Names) -> None:
    exchange = names.exchange("interactions")
    spec = QueueSpec(names.queue("router"), exchange, ("interaction.#",))
    await bus.declare(spec)
    await bus.declare(spec)  # idempotent
    for n in range(3):
        await _publish(bus, exchange, "interaction.sms.inbound", f"m{n}".encode(), mandatory=True)
    inbox = Inbox()
    subscription = await bus.subscribe(spec, inbox)
    await inbox.wait_for(3)
    assert sorted(inbox.bodies()) == [b"m0", b"m1", b"m2"]
    await subscription.close()


async def test_waiting_counts_the_messages_ready_in_a_queue(bus: Bus, names: Names) -> None:
    exchange = names.exchange("dead")
    spec = QueueSpec(names.queue("dead-letters"), exchange, ("#",))
    await bus.declare(spec)
    assert await bus.waiting(spec) == 0
    for n in range(2):
        await _publish(bus, exchange, "router", f"d{n}".encode(), mandatory=True)
    async with asyncio.timeout(10):
        while await bus.waiting(spec) != 2:
            await asyncio.sleep(0.02)
    inbox = Inbox()
    subscription = await bus.subscribe(spec, inbox)
    await inbox.wait_for(2)
    await subscription.close()
    assert await bus.waiting(spec) == 0


async def test_competing_consumers_split_the_messages_and_handle_each_exactly_once(bus: Bus, names: Names) -> None:
    exchange = names.exchange("interactions")
    spec = QueueSpec(names.queue("router"), exchange, ("interaction.#",), prefetch=4)
    first, second = Inbox(), Inbox()
    subscriptions = [await bus.subscribe(spec, first), await bus.subscribe(spec, second)]
    bodies = [f"m{n}".encode() for n in range(40)]
    await asyncio.gather(*(_publish(bus, exchange, "interaction.sms.inbound", body) for body in bodies))
    await _eventually(lambda: len(first.deliveries) + len(second.deliveries) >= len(bodies))
    for subscription in subscriptions:
        await subscription.close()
    assert sorted(first.bodies() + second.bodies()) == sorted(bodies)
    assert first.deliveries and second.deliveries, "both consumers take a share"


async def test_closing_a_subscription_finishes_its_handlers_and_leaves_the_rest_queued(bus: Bus, names: Names) -> None:
    exchange = names.exchange("interactions")
    spec = QueueSpec(names.queue("router"), exchange, ("#",), prefetch=1)
    await bus.declare(spec)
    bodies = [f"m{n}".encode() for n in range(5)]
    for body in bodies:
        await _publish(bus, exchange, "interaction.sms.inbound", body)

    started, release, finished = asyncio.Event(), asyncio.Event(), []

    async def slow(delivery: Delivery) -> None:
        started.set()
        await release.wait()
        finished.append(delivery.body)

    subscription = await bus.subscribe(spec, slow)
    await asyncio.wait_for(started.wait(), 10)
    closing = asyncio.create_task(subscription.close())
    release.set()
    await closing
    assert finished, "the handler in progress ran to its end"

    rest = Inbox()
    subscription = await bus.subscribe(spec, rest)
    await rest.wait_for(len(bodies) - len(finished))
    await subscription.close()
    assert sorted(finished + rest.bodies()) == sorted(bodies)


async def test_a_slow_delivery_holds_back_neither_the_acks_nor_the_deliveries_behind_it(bus: Bus, names: Names) -> None:
    """Handled deliveries are acknowledged together; one still being handled must not keep the others
    unacknowledged, or the prefetch window would close behind it and the consumer stall."""
    exchange = names.exchange("interactions")
    spec = QueueSpec(names.queue("router"), exchange, ("#",), prefetch=5)
    await bus.declare(spec)
    bodies = [f"m{n}".encode() for n in range(12)]
    release, seen, done = asyncio.Event(), Inbox(), []

    async def handler(delivery: Delivery) -> None:
        await seen(delivery)
        if delivery.body == b"m0":
            await release.wait()
        done.append(delivery.body)

    for body in bodies:
        await _publish(bus, exchange, "interaction.sms.inbound", body)
    subscription = await bus.subscribe(spec, handler)
    try:
        await seen.wait_for(len(bodies))  # m0 still in hand: the rest got through a window of five
        assert b"m0" not in done
    finally:
        release.set()  # a failure above must not leave the close below waiting on m0 for ever
    await _eventually(lambda: len(done) == len(bodies))
    await subscription.close()

    again = Inbox()
    subscription = await bus.subscribe(spec, again)
    await _settled(bus, exchange, again, 0)
    assert again.bodies() == [b"marker"], "every handled delivery was acknowledged"
    await subscription.close()


@pytest.mark.parametrize(
    ("binding", "delivered", "not_delivered"),
    [
        ("agent.*", ["agent.a1"], ["agent.a1.extra", "agents.a1", "agent"]),
        ("interaction.#", ["interaction", "interaction.sms", "interaction.sms.inbound"], ["interactions.sms"]),
        ("a.*.c", ["a.b.c"], ["a.c", "a.b.b.c"]),
        ("a.#.c", ["a.c", "a.b.c", "a.b.b.c"], ["a.b", "a.c.d"]),
        ("#.inbound", ["inbound", "sms.inbound", "sms.x.inbound"], ["inbound.sms", "inbounds"]),
        ("#", ["anything.at.all", "one"], []),
        ("exact.key", ["exact.key"], ["exact", "exact.key.more", "other.key"]),
    ],
)
async def test_topic_wildcards_route_as_amqp_does(
    bus: Bus, names: Names, binding: str, delivered: list[str], not_delivered: list[str]
) -> None:
    exchange = names.exchange("topics")
    inbox = Inbox()
    subscription = await bus.subscribe(QueueSpec(names.queue("topics"), exchange, (binding, "marker")), inbox)
    for key in not_delivered + delivered:
        await _publish(bus, exchange, key, key.encode())
    await inbox.wait_for(len(delivered))
    await _settled(bus, exchange, inbox, len(delivered))
    await subscription.close()
    got = [body.decode() for body in inbox.bodies()]
    assert got[-1] == "marker"
    assert sorted(got[:-1]) == sorted(delivered)


async def test_a_failing_handler_gets_the_message_again_marked_redelivered(bus: Bus, names: Names) -> None:
    exchange = names.exchange("interactions")
    inbox = Inbox(fail_times=1)
    subscription = await bus.subscribe(QueueSpec(names.queue("router"), exchange, ("#",)), inbox)
    await _publish(bus, exchange, "interaction.sms.inbound", b"flaky")
    first, second = await inbox.wait_for(2)
    assert (first.body, first.redelivered) == (b"flaky", False)
    assert (second.body, second.redelivered) == (b"flaky", True)
    assert first.message_id == second.message_id
    await _settled(bus, exchange, inbox, 2)  # handled the second time: not delivered a third
    await subscription.close()


@pytest.mark.parametrize(("shared", "delivery_limit"), [(True, 0), (True, 2), (False, 2)])
async def test_a_message_failing_past_the_delivery_limit_lands_on_the_dead_letter_exchange(
    bus: Bus, names: Names, shared: bool, delivery_limit: int
) -> None:
    exchange, dead = names.exchange("interactions"), names.exchange("dead")
    dead_inbox = Inbox()
    dead_subscription = await bus.subscribe(QueueSpec(names.queue("dead-letters"), dead, ("#",)), dead_inbox)
    name = names.queue("router") if shared else names.private_queue()
    spec = QueueSpec(name, exchange, ("#",), shared=shared, delivery_limit=delivery_limit, dead_letter_exchange=dead)
    poison = Inbox(fail_times=1_000)
    subscription = await bus.subscribe(spec, poison)
    await _publish(bus, exchange, "interaction.sms.inbound", b"poison")

    [dead_letter] = await dead_inbox.wait_for(1)
    assert (dead_letter.body, dead_letter.routing_key) == (b"poison", name)
    # RabbitMQ's count: delivered once, then redelivered `delivery_limit` times, then dead-lettered.
    assert [d.redelivered for d in poison.deliveries] == [False] + [True] * delivery_limit
    # Not redelivered again: the next delivery is a later message.
    await _publish(bus, exchange, "marker", b"marker")
    await poison.wait_for(delivery_limit + 2)
    assert poison.bodies()[delivery_limit + 1] == b"marker"
    await subscription.close()
    await dead_subscription.close()


async def test_mandatory_publish_with_no_queue_bound_is_unavailable(bus: Bus, names: Names) -> None:
    with pytest.raises(Unavailable):
        await _publish(bus, names.exchange("interactions"), "interaction.sms.inbound", b"lost?", mandatory=True)


async def test_a_plain_publish_with_no_queue_bound_is_dropped_quietly(bus: Bus, names: Names) -> None:
    exchange = names.exchange("agents")
    await _publish(bus, exchange, "agent.nobody", b"offer")
    inbox = Inbox()
    subscription = await bus.subscribe(QueueSpec(names.queue("late"), exchange, ("#",)), inbox)
    await _settled(bus, exchange, inbox, 0)
    assert inbox.bodies() == [b"marker"], "a queue bound later does not get what was dropped"
    await subscription.close()


async def test_a_private_queue_is_gone_with_its_subscription(bus: Bus, names: Names) -> None:
    exchange = names.exchange("agents")
    spec = QueueSpec(names.private_queue(), exchange, ("agent.#",), shared=False)
    subscription = await bus.subscribe(spec, Inbox())
    await _publish(bus, exchange, "agent.ann", b"offer", mandatory=True)
    await subscription.close()
    with pytest.raises(Unavailable):
        await _publish(bus, exchange, "agent.ann", b"offer", mandatory=True)


async def test_a_shared_queue_outlives_its_subscription(bus: Bus, names: Names) -> None:
    exchange = names.exchange("interactions")
    subscription = await bus.subscribe(QueueSpec(names.queue("router"), exchange, ("#",)), Inbox())
    await subscription.close()
    await _publish(bus, exchange, "interaction.sms.inbound", b"kept", mandatory=True)


async def test_an_open_bus_answers_ping_and_a_closed_one_is_unavailable(bus: Bus, names: Names) -> None:
    exchange = names.exchange("interactions")
    await bus.declare(QueueSpec(names.queue("router"), exchange, ("#",)))
    assert await bus.ping()
    await bus.close()
    assert not await bus.ping()
    with pytest.raises(Unavailable):
        await _publish(bus, exchange, "interaction.sms.inbound", b"late", mandatory=True)


async def test_a_batch_arrives_in_its_order_each_message_confirmed(bus: Bus, names: Names) -> None:
    exchange = names.exchange("events")
    inbox = Inbox()
    await bus.subscribe(QueueSpec(names.queue("webhooks"), exchange, ("#",), prefetch=500), inbox)
    batch = [Outgoing(f"client.{n % 3}", f"event {n}".encode(), str(n)) for n in range(300)]
    outcomes = await bus.publish_many(exchange, batch, content_type="application/cloudevents+json")
    assert outcomes == [None] * 300
    received = await inbox.wait_for(300)
    assert [d.message_id for d in received] == [str(n) for n in range(300)]
    assert [(d.routing_key, d.body) for d in received] == [(m.routing_key, m.body) for m in batch]


async def test_batches_written_ahead_of_their_confirms_arrive_in_the_order_written(bus: Bus, names: Names) -> None:
    exchange = names.exchange("events")
    inbox = Inbox()
    await bus.subscribe(QueueSpec(names.queue("webhooks"), exchange, ("#",), prefetch=500), inbox)
    batches = [
        [Outgoing(f"client.{n % 3}", f"event {n}".encode(), str(n)) for n in range(k, k + 100)] for k in (0, 100, 200)
    ]
    written = [await bus.write_many(exchange, batch) for batch in batches]  # none awaited before the next
    assert [await outcomes for outcomes in written] == [[None] * 100] * 3
    received = await inbox.wait_for(300)
    assert [d.message_id for d in received] == [str(n) for n in range(300)]
    assert await (await bus.write_many(exchange, [])) == []


async def test_a_batch_written_on_a_closed_bus_answers_unavailable_for_each_message(bus: Bus, names: Names) -> None:
    exchange = names.exchange("events")
    await bus.declare(QueueSpec(names.queue("webhooks"), exchange, ("#",)))
    await bus.close()
    outcomes = await (await bus.write_many(exchange, [Outgoing("client.created", b"late", str(n)) for n in range(3)]))
    assert len(outcomes) == 3 and all(isinstance(outcome, Unavailable) for outcome in outcomes)


async def test_an_unbound_key_no_longer_reaches_the_queue_and_the_other_keys_still_do(bus: Bus, names: Names) -> None:
    exchange = names.exchange("events")
    spec = QueueSpec(names.queue("webhooks"), exchange, ("interaction.*", "client.#"))
    await bus.declare(spec)
    await bus.unbind(spec, "interaction.*")
    await bus.unbind(spec, "interaction.*")  # again: nothing to do
    await bus.unbind(spec, "never.bound")
    await _publish(bus, exchange, "interaction.received", b"not for it")
    await _publish(bus, exchange, "client.created", b"for it")
    inbox = Inbox()
    await bus.subscribe(replace(spec, binding_keys=("marker",)), inbox)
    await _settled(bus, exchange, inbox, 1)
    assert inbox.bodies() == [b"for it", b"marker"]


async def test_a_batch_on_a_closed_bus_answers_unavailable_for_each_message(bus: Bus, names: Names) -> None:
    exchange = names.exchange("events")
    await bus.declare(QueueSpec(names.queue("webhooks"), exchange, ("#",)))
    await bus.close()
    outcomes = await bus.publish_many(exchange, [Outgoing("client.created", b"late", str(n)) for n in range(3)])
    assert len(outcomes) == 3 and all(isinstance(outcome, Unavailable) for outcome in outcomes)


# RabbitMQ only: a broker that is not there, or a network that stalls or breaks under us.


class BrokerLink:
    """A TCP relay between the bus and RabbitMQ that a test can stall (bytes held back) or cut (connections
    dropped), to play a broker that stops answering or a network that breaks."""

    def __init__(self, broker: URL) -> None:
        self._broker = broker
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.url = broker

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        # Reconnect quickly: aio-pika waits 5 s by default.
        self.url = self._broker.with_host("127.0.0.1").with_port(port).update_query(reconnect_interval="0.2")

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.close()

    async def stop(self) -> None:
        self.resume()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        broker_reader, broker_writer = await asyncio.open_connection(self._broker.host, self._broker.port or 5672)
        self._writers |= {client_writer, broker_writer}
        await asyncio.gather(
            self._pump(client_reader, broker_writer), self._pump(broker_reader, client_writer), return_exceptions=True
        )
        self._writers -= {client_writer, broker_writer}

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def broker_link(amqp_url: str) -> AsyncIterator[BrokerLink]:
    link = BrokerLink(URL(amqp_url))
    await link.start()
    yield link
    await link.stop()


@contextlib.asynccontextmanager
async def _amqp_bus(url: URL | str, publish_timeout: float) -> AsyncIterator[Bus]:
    opened = await connect_amqp(str(url), publish_timeout=publish_timeout)
    try:
        yield opened
    finally:
        await opened.close()


async def _unavailable_within(seconds: float, operation: Awaitable[object]) -> Unavailable:
    started = asyncio.get_running_loop().time()
    with pytest.raises(Unavailable) as raised:
        await operation
    assert asyncio.get_running_loop().time() - started < seconds
    return raised.value


async def test_an_unreachable_broker_is_unavailable_at_once_and_the_password_stays_secret() -> None:
    refused = await _unavailable_within(3, connect_amqp("amqp://guest:secret-password@127.0.0.1:1/", publish_timeout=1))
    assert "secret-password" not in str(refused)


async def test_a_publish_the_broker_does_not_confirm_in_time_is_unavailable(
    names: Names, broker_link: BrokerLink
) -> None:
    interactions, events = names.exchange("interactions"), names.exchange("events")
    async with _amqp_bus(broker_link.url, publish_timeout=0.5) as bus:
        await bus.declare(QueueSpec(names.queue("router"), interactions, ("#",)))
        broker_link.stall()
        await _unavailable_within(3, _publish(bus, interactions, "interaction.sms.inbound", b"stalled"))
        # The first publish to an exchange declares it: a timeout there must not break the publishing channel.
        await _unavailable_within(3, _publish(bus, events, "agent.state", b"stalled"))
        assert not await bus.ping()

        broker_link.resume()
        assert await bus.ping()
        await _publish(bus, interactions, "interaction.sms.inbound", b"after", mandatory=True)
        await _publish(bus, events, "agent.state", b"after")


async def test_a_batch_the_broker_does_not_confirm_in_time_answers_unavailable_within_the_timeout(
    names: Names, broker_link: BrokerLink
) -> None:
    events = names.exchange("events")
    async with _amqp_bus(broker_link.url, publish_timeout=0.5) as bus:
        await bus.declare(QueueSpec(names.queue("webhooks"), events, ("#",)))
        broker_link.stall()
        started = asyncio.get_running_loop().time()
        outcomes = await bus.publish_many(events, [Outgoing("client.created", b"stalled", str(n)) for n in range(20)])
        assert asyncio.get_running_loop().time() - started < 3
        assert all(isinstance(outcome, Unavailable) for outcome in outcomes)

        broker_link.resume()
        assert await bus.ping()
        assert await bus.publish_many(events, [Outgoing("client.created", b"after", "21")]) == [None]


async def test_an_ack_lost_in_a_reconnect_is_logged_and_the_message_redelivered(
    names: Names, broker_link: BrokerLink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="contactcenter.bus.amqp")
    exchange = names.exchange("interactions")
    deliveries: list[Delivery] = []
    first_started, release_first = asyncio.Event(), asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        deliveries.append(delivery)
        if len(deliveries) == 1:
            first_started.set()
            await release_first.wait()

    async with _amqp_bus(broker_link.url, publish_timeout=5) as bus:
        subscription = await bus.subscribe(QueueSpec(names.queue("router"), exchange, ("#",)), handler)
        await _publish(bus, exchange, "interaction.sms.inbound", b"hello")
        await asyncio.wait_for(first_started.wait(), 10)
        broker_link.cut()  # the broker requeues the unacked message; the bus reconnects and consumes again

        await _eventually(lambda: len(deliveries) >= 2, timeout=20)
        assert (deliveries[1].body, deliveries[1].redelivered) == (b"hello", True)
        release_first.set()
        await _eventually(lambda: "could not ack" in caplog.text)
        await subscription.close()
    assert len(deliveries) == 2


async def test_a_single_active_consumer_queue_hands_what_the_closed_consumer_held_to_the_next_first(
    amqp_url: str, names: Names
) -> None:
    """The webhooks' queue: one consumer at a time gets the messages, in queue order; when it closes, what it held
    unacknowledged goes to the next consumer ahead of anything newer. (Cancelling first made the next consumer
    active at once: it handled newer messages while the first still finished older ones.)"""
    exchange = names.exchange("events")
    spec = QueueSpec(names.queue("webhooks"), exchange, ("#",), prefetch=8, single_active_consumer=True)
    first_bus = await connect_amqp(amqp_url, publish_timeout=5)
    second_bus = await connect_amqp(amqp_url, publish_timeout=5)
    handled: list[tuple[str, bytes]] = []  # by both, as they finish
    try:
        in_order = asyncio.Lock()  # as the dispatcher records: one at a time, in the order they came

        async def slowly(delivery: Delivery) -> None:
            async with in_order:
                await asyncio.sleep(0.05)
                handled.append(("first", delivery.body))

        async def quickly(delivery: Delivery) -> None:
            handled.append(("second", delivery.body))

        first_subscription = await first_bus.subscribe(spec, slowly)
        second_subscription = await second_bus.subscribe(spec, quickly)
        bodies = [f"m{n:02d}".encode() for n in range(30)]
        for body in bodies:
            await _publish(first_bus, exchange, "client.created", body)
        await _eventually(lambda: len(handled) >= 3)
        assert {who for who, _ in handled} == {"first"}, "the second consumer waits while the first is active"
        await first_subscription.close()
        await _eventually(lambda: ("second", bodies[-1]) in handled)
        await second_subscription.close()
    finally:
        await first_bus.close()
        await second_bus.close()
    firsts = list(dict.fromkeys(body for _, body in handled))
    assert firsts == bodies, "each message first handled in queue order, across the two consumers"
