"""The shared servers a bench runs on (TEST_*_URL or the local ones), and how a run leaves them as it found them."""

from __future__ import annotations

import os

import asyncpg

from bench.ports import free_port

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def free_ports(count: int) -> list[int]:
    """Ports for the processes a run starts (bench/ports.py: why not the kernel's free ports)."""
    return [free_port() for _ in range(count)]


async def clean_up(namespace: str) -> None:
    """Leave the shared servers as they were: the run's schema, queues, exchanges and Redis keys go."""
    import aio_pika
    import redis.asyncio as aioredis

    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
    await conn.close()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        for queue in ("router", "dead-letters", "webhooks"):
            channel = await connection.channel()
            await channel.queue_delete(f"{namespace}.{queue}", if_unused=False, if_empty=False)
        for exchange in ("interactions", "dead", "events"):
            channel = await connection.channel()
            await channel.exchange_delete(f"{namespace}.{exchange}")
    finally:
        await connection.close()
    client = aioredis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.delete(*keys[start : start + 1000])
    await client.aclose()
