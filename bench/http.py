"""A lean HTTP/1.1 client for the load generator: keep-alive connections, one request in flight on each,
requests written as ready-made bytes and answers read no further than their status and length.

The load generator shares the machine with the service it measures, so every microsecond it spends is taken
from the service: a general client (aiohttp's, with its form encoder, cookie jar and tracing) costs several
times what the few bytes of a webhook need.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast


class HttpError(Exception):
    """The connection broke or the answer was not HTTP."""


class _Connection(asyncio.Protocol):
    def __init__(self, on_idle: deque[_Connection]) -> None:
        self._idle = on_idle
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answer: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self._transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._answer

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self._buffer[:head_end]).split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self._buffer) < head_end + 4 + length:
            return
        del self._buffer[: head_end + 4 + length]
        try:
            status = int(head[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(HttpError(f"not an HTTP answer: {head[0]!r}"))
            return
        answer, self._answer = self._answer, None
        if answer is None:
            self._fail(HttpError(f"an answer nobody asked for: {head[0]!r}"))
            return
        self._idle.append(self)
        if not answer.done():
            answer.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(HttpError(f"connection lost: {exc!r}"))

    def _fail(self, error: HttpError) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class HttpClient:
    """Posts to one server over a pool of keep-alive connections, opening another when all are busy."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._idle: deque[_Connection] = deque()
        self._all: list[_Connection] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """Send one POST and return the answer's status."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        connection = await self._connection()
        return await connection.send(request)

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.popleft()
            if not connection.closed:
                return connection
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: _Connection(self._idle), self.host, self.port)
        self._all.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
