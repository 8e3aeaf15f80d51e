"""The raw limits of this machine, measured in the same run as the service: what RabbitMQ, PostgreSQL and
Redis do with no application code in between. Our throughput is reported as a ratio of these — and, since
on two shared cores a rate is only half the story, each raw operation's cost in the whole machine's CPU
(client, server and everything else running), which bounds what code making the same operations for each
contact can carry."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import aio_pika
import asyncpg
import redis.asyncio as aioredis

from bench.processes import MachineCpu

# Each contact crosses the bus once: the adapter's inbound message to a router. (The offer to the gateway
# holding the agent's socket crossed it too until it went through Redis, `contactcenter/agents/relay.py`.)
BUS_CROSSINGS_PER_INTERACTION = 1

T = TypeVar("T")


@dataclass(frozen=True)
class RawFigure:
    per_s: float
    machine_cpu_us: float  # the whole machine's CPU per operation, over the same window


@dataclass(frozen=True)
class RawLimits:
    bus_publish: RawFigure
    bus_consume: RawFigure
    postgres_insert: RawFigure
    redis_script: RawFigure

    def by_operation(self) -> dict[str, RawFigure]:
        return {
            "bus_publish": self.bus_publish,
            "bus_consume": self.bus_consume,
            "postgres_insert": self.postgres_insert,
            "redis_script": self.redis_script,
        }

    def bus_bound_per_s(self) -> float:
        """Contacts per second the machine's cores could carry if a contact cost nothing but its crossing of
        the bus, at the raw test's cost — before any webhook, database, Redis or socket work. A bound for
        code that sends each contact in a message of its own; ours passes it under load by sending the
        contacts that arrive together in one message (`channels/intake/publishing.py`)."""
        crossing_us = self.bus_publish.machine_cpu_us + self.bus_consume.machine_cpu_us
        return (os.cpu_count() or 1) / (BUS_CROSSINGS_PER_INTERACTION * crossing_us / 1e6)


async def _measured(operations: Awaitable[T], count: int) -> tuple[RawFigure, T]:
    """Run `count` operations (awaiting `operations` runs them all): their rate, the machine's CPU each, and
    what `operations` answered."""
    machine = MachineCpu({})
    started = time.perf_counter()
    result = await operations
    elapsed = time.perf_counter() - started
    used, _, _ = machine.by_group()
    return RawFigure(count / elapsed, 1e6 * sum(used.values()) / count), result


async def _bus_rates(amqp_url: str, count: int, window: int) -> tuple[RawFigure, RawFigure]:
    """Publish with confirms (`window` in flight, as concurrent webhooks do) into a quorum queue, then
    consume the lot with manual acks."""
    name = f"bench.raw.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, "#")
        body = b"x" * 600  # about one SMS interaction
        gate = asyncio.Semaphore(window)

        async def publish_one(n: int) -> None:
            async with gate:
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(n))
                await exchange.publish(message, "interaction.sms.inbound")

        publishing, _ = await _measured(asyncio.gather(*(publish_one(n) for n in range(count))), count)

        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=window)
        consumed = asyncio.Event()
        seen = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen == count:
                consumed.set()

        queue_on_consumer = await consumer.get_queue(name)

        async def consume_all() -> str:
            tag = await queue_on_consumer.consume(on_message)
            await consumed.wait()
            return tag

        consuming, tag = await _measured(consume_all(), count)
        await queue_on_consumer.cancel(tag)
        await queue_on_consumer.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        return publishing, consuming
    finally:
        await connection.close()


async def _postgres_rate(database_url: str, count: int, window: int) -> RawFigure:
    """Single-row inserts in their own transactions, `window` at once: what the router does per interaction."""
    pool = await asyncpg.create_pool(database_url, min_size=window, max_size=window)
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    try:
        await pool.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, body text)")
        gate = asyncio.Semaphore(window)

        async def insert_one() -> None:
            async with gate:
                await pool.execute(f"INSERT INTO {table} VALUES ($1, $2)", uuid.uuid4(), "x" * 160)

        inserting, _ = await _measured(asyncio.gather(*(insert_one() for _ in range(count))), count)
        return inserting
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()


async def _redis_rate(redis_url: str, count: int, window: int) -> RawFigure:
    """A small Lua script (a hash write and a sorted-set add), `window` at once."""
    client = aioredis.from_url(redis_url)
    prefix = f"bench:raw:{uuid.uuid4().hex[:8]}"
    script = client.register_script(
        "redis.call('HSET', KEYS[1], 'state', 'queued') return redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])"
    )
    try:
        gate = asyncio.Semaphore(window)

        async def run_one(n: int) -> None:
            async with gate:
                await script(keys=[f"{prefix}:task:{n}", f"{prefix}:queue"], args=[n])

        running, _ = await _measured(asyncio.gather(*(run_one(n) for n in range(count))), count)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        return running
    finally:
        await client.aclose()


async def measure_raw_limits(
    *, amqp_url: str, database_url: str, redis_url: str, count: int = 5000, window: int = 64
) -> RawLimits:
    publish, consume = await _bus_rates(amqp_url, count, window)
    return RawLimits(
        bus_publish=publish,
        bus_consume=consume,
        postgres_insert=await _postgres_rate(database_url, count, min(window, 20)),
        redis_script=await _redis_rate(redis_url, count, window),
    )
