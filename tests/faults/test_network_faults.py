"""Latency, a blackhole and a reset on each of the three connections (PostgreSQL, Redis, RabbitMQ), through a
TCP proxy in front of the shared server — the proxy is faulted, never the server. After each fault is healed,
webhooks are acknowledged again and agents get offers again; nothing acknowledged is lost or offered twice."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import aiohttp
import pytest

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
from tests.faults.proxy import FaultProxy, fault_proxy
from tests.running import run_service

URL_SETTING = {"postgresql": "database_url", "redis": "redis_url", "rabbitmq": "amqp_url"}
FAULT_SECONDS = 2.0


def _through(url: str, port: int) -> str:
    parsed = urlparse(url)
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.port}", f":{port}")).geturl()


async def _healed(ledger: Ledger, floor: Floor, after: str) -> None:
    try:
        await acknowledged_again(ledger, seconds=30)
    except TimeoutError:
        raise AssertionError(f"webhooks were not acknowledged again after {after}: {ledger.refusals}") from None
    try:
        await accepted_again(floor, seconds=30)
    except TimeoutError:
        raise AssertionError(f"agents got no offer again after {after}") from None


@pytest.mark.parametrize("server", list(URL_SETTING))
async def test_latency_blackhole_and_reset_on_a_connection_lose_and_duplicate_nothing(
    service_settings: Settings, server: str
) -> None:
    setting = URL_SETTING[server]
    secret = getattr(service_settings, setting)
    assert secret is not None
    url = secret.get_secret_value()
    parsed = urlparse(url)
    assert parsed.hostname is not None and parsed.port is not None
    async with fault_proxy(parsed.hostname, parsed.port) as proxy:
        settings = faulty(service_settings, **{setting: _through(url, proxy.port)})
        ledger = Ledger()
        async with run_service(settings) as service, aiohttp.ClientSession() as http:
            floor = Floor(http, service.base_url)
            await floor.staff("sales", agents=4)
            twilio = TwilioClient(http, service.base_url, ledger)
            stop = asyncio.Event()
            traffic = asyncio.create_task(twilio.traffic(stop, senders=6, pause=0.05, budget=60))
            await _healed(ledger, floor, "the start")

            proxy.delay(0.05)
            await asyncio.sleep(FAULT_SECONDS)
            proxy.forward()
            await _healed(ledger, floor, "latency")

            await _blackhole(proxy)
            await _healed(ledger, floor, "a blackhole")

            proxy.reset()
            await _healed(ledger, floor, "a reset")
            stop.set()
            await traffic

            counts = await settle(ledger, floor, settings)
            await floor.close()
    assert_survived(counts, f"{server} latency, blackhole, reset")


async def _blackhole(proxy: FaultProxy) -> None:
    """Bytes vanish both ways for a while; then the connections that lost them are reset, as a peer's TCP
    stack ends them after its retransmissions, or a middlebox that lost their state answers them. Healed by
    forwarding alone, each client would have to find its dead connections by itself: see the report of the
    fault tests (no read timeout on Redis and PostgreSQL, 60 s AMQP heartbeats)."""
    proxy.blackhole()
    await asyncio.sleep(FAULT_SECONDS)
    proxy.forward()
    proxy.reset()
