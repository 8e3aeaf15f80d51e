"""Redis loses live state under traffic (a private server): flushed, then restarted without persistence.
Routers rebuild live state from PostgreSQL (`routing/recovery.py`): every acknowledged contact is still
stored once and offered once."""

from __future__ import annotations

import asyncio

import aiohttp
import redis.asyncio as aioredis

from contactcenter.settings import Settings
from tests.faults.accounting import (
    Floor,
    Ledger,
    TwilioClient,
    accepted_again,
    acknowledged_again,
    assert_survived,
    settle,
)
from tests.faults.conftest import faulty
from tests.faults.private import PrivateRedis
from tests.running import run_service


async def _flush(server: PrivateRedis) -> None:
    client = aioredis.from_url(server.url)
    try:
        await client.flushall()  # the private server only: the shared one serves others' tests
    finally:
        await client.aclose()


async def test_redis_flushed_then_restarted_under_traffic_loses_and_duplicates_nothing(
    service_settings: Settings, private_redis: PrivateRedis
) -> None:
    settings = faulty(service_settings, redis_url=private_redis.url)
    ledger = Ledger()
    async with run_service(settings) as service, aiohttp.ClientSession() as http:
        floor = Floor(http, service.base_url)
        await floor.staff("sales", agents=4)
        twilio = TwilioClient(http, service.base_url, ledger)
        stop = asyncio.Event()
        traffic = asyncio.create_task(twilio.traffic(stop, senders=6, pause=0.05, budget=60))

        for fault in (_flush, PrivateRedis.restart):
            await accepted_again(floor)
            await fault(private_redis)
            await acknowledged_again(ledger)
        await accepted_again(floor)
        stop.set()
        await traffic

        counts = await settle(ledger, floor, settings)
        await floor.close()
    assert_survived(counts, "redis flush and restart")
