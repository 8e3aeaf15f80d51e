"""The raw limits of this machine, measured in the same run as the service: what RabbitMQ, PostgreSQL and
Redis do with no application code in between. Our throughput is reported as a ratio of these."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import aio_pika
import asyncpg
import redis.asyncio as aioredis


@dataclass(frozen=True)
class RawLimits:
    bus_publish_per_s: float
    bus_consume_per_s: float
    postgres_insert_per_s: float
    redis_script_per_s: float


async def _bus_rates(amqp_url: str, count: int, window: int) -> tuple[float, float]:
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

        started = time.perf_counter()
        await asyncio.gather(*(publish_one(n) for n in range(count)))
        publish_rate = count / (time.perf_counter() - started)

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

        started = time.perf_counter()
        queue_on_consumer = await consumer.get_queue(name)
        tag = await queue_on_consumer.consume(on_message)
        await consumed.wait()
        consume_rate = count / (time.perf_counter() - started)
        await queue_on_consumer.cancel(tag)
        await queue_on_consumer.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        return publish_rate, consume_rate
    finally:
        await connection.close()


async def _postgres_rate(database_url: str, count: int, window: int) -> float:
    """Single-row inserts in their own transactions, `window` at once: what the router does per interaction."""
    pool = await asyncpg.create_pool(database_url, min_size=window, max_size=window)
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    try:
        await pool.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, body text)")
        gate = asyncio.Semaphore(window)

        async def insert_one() -> None:
            async with gate:
                await pool.execute(f"INSERT INTO {table} VALUES ($1, $2)", uuid.uuid4(), "x" * 160)

        started = time.perf_counter()
        await asyncio.gather(*(insert_one() for _ in range(count)))
        return count / (time.perf_counter() - started)
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()


async def _redis_rate(redis_url: str, count: int, window: int) -> float:
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

        started = time.perf_counter()
        await asyncio.gather(*(run_one(n) for n in range(count)))
        rate = count / (time.perf_counter() - started)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        return rate
    finally:
        await client.aclose()


async def measure_raw_limits(
    *, amqp_url: str, database_url: str, redis_url: str, count: int = 5000, window: int = 64
) -> RawLimits:
    publish, consume = await _bus_rates(amqp_url, count, window)
    return RawLimits(
        bus_publish_per_s=publish,
        bus_consume_per_s=consume,
        postgres_insert_per_s=await _postgres_rate(database_url, count, min(window, 20)),
        redis_script_per_s=await _redis_rate(redis_url, count, window),
    )
