"""A process started while a service it needs does not answer yet (compose starting everything at once, a
broker restarting, a database failing over) waits for it and comes up once it answers — it does not exit. The
fault tests found a replacement router exiting when one declaration took longer than the publish timeout."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import pytest

from bench.ports import free_port
from contactcenter.settings import Settings
from tests.faults.conftest import faulty
from tests.faults.layout import ServiceProcess, service_environment
from tests.faults.proxy import FaultProxy

URL_SETTING = {"postgresql": "database_url", "redis": "redis_url", "rabbitmq": "amqp_url"}
DOWN_SECONDS = 4.0


@pytest.mark.parametrize("role", ["router", "api"])
@pytest.mark.parametrize("server", list(URL_SETTING))
async def test_a_process_started_before_a_service_answers_comes_up_once_it_does(
    service_settings: Settings, server: str, role: str
) -> None:
    secret = getattr(service_settings, URL_SETTING[server])
    assert secret is not None
    parsed = urlparse(secret.get_secret_value())
    assert parsed.hostname is not None and parsed.port is not None
    port = free_port()  # nothing listens there until the proxy to the server starts: connections are refused
    url = parsed._replace(netloc=parsed.netloc.replace(f":{parsed.port}", f":{port}")).geturl()
    process = ServiceProcess(role, service_environment(faulty(service_settings, **{URL_SETTING[server]: url})))
    proxy = FaultProxy(parsed.hostname, parsed.port, port=port)
    starting = asyncio.create_task(process.start())
    try:
        await asyncio.sleep(DOWN_SECONDS)
        assert not starting.done(), f"the {role} process gave up while {server} was down: {starting}"
        await proxy.start()
        await starting
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await process.stop()
        await proxy.stop()
