"""A TCP proxy in front of a server, to fault the connection without touching the server (others share it):
forward, add latency, blackhole (accept and read, but drop every byte both ways), reset (close every
connection at once)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

CHUNK = 65536


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.latency = 0.0
        self.blackholed = False
        self.port = port  # 0: any free port, known once started

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def forward(self) -> None:
        """Back to a plain pipe. Connections open during a blackhole stay open: whatever was dropped is gone,
        as after a middlebox lost their state, and only the clients' own timeouts find out."""
        self.latency = 0.0
        self.blackholed = False

    def delay(self, seconds: float) -> None:
        self.latency = seconds

    def blackhole(self) -> None:
        self.blackholed = True

    def reset(self) -> None:
        """Close every connection at once, as a server or a network that went away does."""
        for writer in list(self._writers):
            with contextlib.suppress(OSError, RuntimeError):
                writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.transport.abort()
            self._writers.discard(client_writer)
            return
        self._writers.add(server_writer)
        pipes = [
            asyncio.create_task(self._pipe(client_reader, server_writer, client_writer)),
            asyncio.create_task(self._pipe(server_reader, client_writer, server_writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._tasks.difference_update(pipes)
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                if self.blackholed:
                    continue
                if self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            # One side went away: so does the other, as through a real connection.
            writer.transport.abort()
            source.transport.abort()


@contextlib.asynccontextmanager
async def fault_proxy(host: str, port: int) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(host, port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
