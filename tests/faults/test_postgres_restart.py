"""PostgreSQL restarted under traffic (a private cluster): every connection the pools hold is cut at once.
The pools must heal by themselves — routers store again, agents' commands work again — and nothing
acknowledged is lost or stored twice."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from contactcenter.settings import Settings
from tests.faults.accounting import Floor, Ledger, TwilioClient, assert_survived, settle, unoffered_story, until
from tests.faults.conftest import faulty
from tests.faults.private import PrivatePostgres
from tests.running import run_service


async def test_postgres_restarted_under_traffic_heals_the_pools_and_loses_nothing(
    service_settings: Settings, private_postgres: PrivatePostgres
) -> None:
    settings = faulty(service_settings, database_url=private_postgres.url, database_schema="public")
    ledger = Ledger()
    async with run_service(settings) as service, aiohttp.ClientSession() as http:
        floor = Floor(http, service.base_url)
        await floor.staff("sales", agents=4)
        twilio = TwilioClient(http, service.base_url, ledger)
        stop = asyncio.Event()
        traffic = asyncio.create_task(twilio.traffic(stop, senders=6, pause=0.05, budget=60))
        await until(lambda: len(floor.accepted) >= 20)

        await private_postgres.restart(down_seconds=3.0)
        healed = time.monotonic()
        accepted_before = sum(floor.accepted.values())
        await until(lambda: ledger.acknowledged_since(healed) >= 20, seconds=60)
        # Offers are accepted again: the agents' path through the pool heals too.
        await until(lambda: sum(floor.accepted.values()) >= accepted_before + 20, seconds=60)
        stop.set()
        await traffic

        counts = await settle(ledger, floor, settings)
        if counts.not_offered:
            print("never offered:", *await unoffered_story(ledger, floor, settings), sep="\n  ")
        async with http.get(f"{service.base_url}/readyz") as response:
            assert response.status == 200, await response.text()
        await floor.close()
    assert_survived(counts, "postgresql restart")
