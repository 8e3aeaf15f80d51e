"""A rolling restart of the API: SIGTERM to a process that holds agents' sockets makes it tell them to connect
again (1012, service restart) and exit at once — not after aiohttp's 60-second shutdown timeout."""

from __future__ import annotations

import asyncio

import aiohttp

from contactcenter.settings import Settings
from tests.faults.layout import ServiceProcess, service_environment
from tests.running import ADMIN_TOKEN

SERVICE_RESTART = 1012


async def test_an_api_process_stopped_with_agents_connected_exits_at_once_telling_them_to_reconnect(
    service_settings: Settings,
) -> None:
    api = ServiceProcess("api", service_environment(service_settings))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        await api.start()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{api.base_url}/api/v1/queues", json={"name": "sales", "channels": ["sms"]}, headers=admin
            ) as r:
                assert r.status == 201
            async with http.post(
                f"{api.base_url}/api/v1/agents", json={"name": "Ann", "queues": ["sales"]}, headers=admin
            ) as r:
                token = (await r.json())["token"]
            socket = await http.ws_connect(f"{api.base_url}/api/v1/agents/ws?token={token}")
            assert (await socket.receive_json())["type"] == "hello"
            reading = asyncio.create_task(_read_to_the_close(socket))  # as a desktop reads, all the time
            # Well within aiohttp's own shutdown timeout (60 s), which the process waited out before.
            exit_code = await api.terminate(within_seconds=15)
            assert await reading == SERVICE_RESTART
        assert exit_code == 0, api.log()
    finally:
        await api.stop()


async def _read_to_the_close(socket: aiohttp.ClientWebSocketResponse) -> int | None:
    async for _ in socket:
        pass
    return socket.close_code
