"""RabbitMQ stopped and started mid-burst (a private node): while it is down the provider hears 503 and
retries, never a 200 for something not stored; once it is back, traffic flows and nothing is lost."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from contactcenter.settings import Settings
from tests.faults.accounting import Floor, Ledger, TwilioClient, assert_survived, settle, until
from tests.faults.conftest import faulty
from tests.faults.private import PrivateRabbitMQ
from tests.running import run_service


async def test_rabbitmq_stopped_mid_burst_refuses_with_503_then_flows_and_loses_nothing(
    service_settings: Settings, private_rabbitmq: PrivateRabbitMQ
) -> None:
    settings = faulty(service_settings, amqp_url=private_rabbitmq.url)
    ledger = Ledger()
    async with run_service(settings) as service, aiohttp.ClientSession() as http:
        floor = Floor(http, service.base_url)
        await floor.staff("sales", agents=4)
        twilio = TwilioClient(http, service.base_url, ledger)
        stop = asyncio.Event()
        traffic = asyncio.create_task(twilio.traffic(stop, senders=6, pause=0.05, budget=60))
        await until(lambda: len(ledger.acknowledged) >= 20)

        await private_rabbitmq.stop_app()
        refused_before = ledger.refusals["503"]
        await until(lambda: ledger.refusals["503"] > refused_before)
        await asyncio.sleep(1.0)
        await private_rabbitmq.start_app()
        healed = time.monotonic()
        await until(lambda: ledger.acknowledged_since(healed) >= 20, seconds=60)
        stop.set()
        await traffic

        counts = await settle(ledger, floor, settings)
        await floor.close()
    assert counts.refusals.get("503", 0) > 0, "the outage was never seen by the provider"
    assert_survived(counts, "rabbitmq stop_app/start_app")
