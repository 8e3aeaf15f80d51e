"""A rolling restart: the service that stops closes its agents' and visitors' sockets and its supervisors' streams
as soon as it begins to stop, telling desktops and widgets to reconnect (to another process), instead of waiting
for them through aiohttp's shutdown timeout."""

from __future__ import annotations

import asyncio

import aiohttp

from contactcenter.settings import Settings
from tests.running import AgentDesktop, run_service
from tests.visitors import ChatVisitor

SERVICE_RESTART = 1012  # RFC 6455's registry: the service is restarting, connect again


async def _close_code(socket: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read the socket as a desktop does (answering the close handshake) until it closes; its close code."""
    async for _ in socket:
        pass
    return socket.close_code


async def _until_end_of_stream(response: aiohttp.ClientResponse) -> bytes:
    return await response.content.read()


async def test_stopping_with_agents_visitors_and_supervisors_connected_tells_them_to_reconnect_at_once(
    service_settings: Settings,
) -> None:
    # The clients' own session outlives the service: they are closed by the service, not by the test.
    async with aiohttp.ClientSession() as clients:
        # aiohttp's own shutdown timeout (60 s) is well past the deadline below: only closing at once meets it.
        async with asyncio.timeout(15):
            async with run_service(service_settings) as service:
                await service.create_queue("sales", ["sms", "chat"])
                agent = await service.create_agent("Ann", ["sales"])
                supervisor = await service.create_supervisor("Sue", ["sales"])
                desktop = AgentDesktop(
                    await clients.ws_connect(f"{service.base_url}/api/v1/agents/ws?token={agent['token']}")
                )
                await desktop.receive("hello")
                await desktop.command({"type": "state", "state": "available"}, "state")
                visitor = ChatVisitor(clients, service.base_url)
                await visitor.connect()
                stream = await clients.get(
                    f"{service.base_url}/api/v1/supervisor/stream", params={"token": supervisor["token"]}
                )
                assert stream.status == 200
                assert (await stream.content.readuntil(b"\n\n")).startswith(b"retry:")
                assert visitor.socket is not None
                closings = asyncio.gather(
                    _close_code(desktop.socket), _close_code(visitor.socket), _until_end_of_stream(stream)
                )
            # The service has stopped, within the deadline.
            agent_code, visitor_code, _ = await closings
    assert agent_code == SERVICE_RESTART
    assert visitor_code == SERVICE_RESTART
