"""A router process SIGKILLed mid-batch, in production layout (an API process and router processes), then a
router started again: every contact acknowledged to Twilio ends up stored once and offered once."""

from __future__ import annotations

import asyncio

import aiohttp

from contactcenter.settings import Settings
from tests.faults.accounting import (
    Floor,
    Ledger,
    TwilioClient,
    accepted_again,
    acknowledged_again,
    assert_survived,
    settle,
    stored,
)
from tests.faults.conftest import faulty
from tests.faults.layout import ServiceProcess, service_environment


async def test_a_router_killed_mid_batch_loses_and_duplicates_nothing(service_settings: Settings) -> None:
    settings = faulty(service_settings)
    assert settings.database_url is not None
    environment = service_environment(settings)
    api, router, successor = (ServiceProcess(role, environment) for role in ("api", "router", "router"))
    ledger = Ledger()
    try:
        await api.start()
        await router.start()
        async with aiohttp.ClientSession() as http:
            floor = Floor(http, api.base_url)
            await floor.staff("sales", agents=4)
            twilio = TwilioClient(http, api.base_url, ledger)
            stop = asyncio.Event()
            traffic = asyncio.create_task(twilio.traffic(stop, senders=10, pause=0.0, budget=60))
            await accepted_again(floor)

            router.kill()
            held = await stored(settings.database_url.get_secret_value(), settings.database_schema, list(ledger.sent))
            in_flight = len(ledger.acknowledged) - len(held)
            await acknowledged_again(ledger)  # the API takes contacts in while no router runs
            await successor.start()
            await accepted_again(floor)
            stop.set()
            await traffic

            counts = await settle(ledger, floor, settings)
            await floor.close()
    finally:
        for process in (api, router, successor):
            await process.stop()
    print(f"acknowledged but not yet stored when the router was killed: {in_flight}")
    assert_survived(counts, "router SIGKILL")
