"""A lean HTTP/1.1 client for the load generator: keep-alive connections, one request in flight on each,
requests written as ready-made bytes, answers read no further than their status and length and handed to a
callback — no task, future or timer per request.

The load generator shares the machine with the service it measures, so every microsecond it spends is taken
from the service: a general client (aiohttp's, with its form encoder, cookie jar and tracing) costs far more
than the few bytes of a webhook need, and a task per request with its own timeout more again
(docs/performance.md, "Figures behind choices in the code").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

# A request's outcome: the answer's status, or why there was none.
Answered = Callable[[int | Exception], None]


class HttpError(Exception):
    """The connection broke or the answer was not HTTP."""


class _Connection(asyncio.Protocol):
    def __init__(self, on_idle: deque[_Connection]) -> None:
        self._idle = on_idle
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answered: Answered | None = None
        self.deadline = 0.0  # the loop's time by which the request in flight must be answered
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def send(self, request: bytes, answered: Answered, deadline: float) -> None:
        assert self._transport is not None and self._answered is None
        self._answered, self.deadline = answered, deadline
        self._transport.write(request)

    @property
    def busy(self) -> bool:
        return self._answered is not None

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
            self.fail(HttpError(f"not an HTTP answer: {head[0]!r}"))
            return
        answered, self._answered = self._answered, None
        if answered is None:
            self.fail(HttpError(f"an answer nobody asked for: {head[0]!r}"))
            return
        self._idle.append(self)
        answered(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(HttpError(f"connection lost: {exc!r}"))

    def fail(self, error: Exception) -> None:
        self.close()
        answered, self._answered = self._answered, None
        if answered is not None:
            answered(error)

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class HttpClient:
    """Posts to one server over a pool of keep-alive connections, opening another when all are busy. A request
    not answered within `timeout` seconds fails with TimeoutError (its connection is closed)."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self._timeout = timeout
        self._idle: deque[_Connection] = deque()
        self._all: list[_Connection] = []
        self._opening: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def connections(self) -> int:
        """Connections opened and not yet found closed."""
        return len(self._all)

    def post(self, path: str, body: bytes, headers: dict[str, str], answered: Answered) -> None:
        """Send one POST; `answered` gets its status, or the failure."""
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        deadline = asyncio.get_running_loop().time() + self._timeout
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())
        while self._idle:
            connection = self._idle.popleft()
            if not connection.closed:
                connection.send(request, answered, deadline)
                return
        # Every connection is busy: one more, opened in the background (the usual case only while warming up).
        task = asyncio.create_task(self._open_and_send(request, answered, deadline))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open_and_send(self, request: bytes, answered: Answered, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(lambda: _Connection(self._idle), self.host, self.port)
        except (OSError, TimeoutError) as exc:
            answered(exc)
            return
        self._all.append(connection)
        connection.send(request, answered, deadline)

    async def _sweep(self) -> None:
        """Fail the requests past their deadline, looking twice per timeout (at most once a second)."""
        while True:
            await asyncio.sleep(min(1.0, self._timeout / 2))
            now = asyncio.get_running_loop().time()
            for connection in self._all:
                if connection.busy and connection.deadline < now:
                    connection.fail(TimeoutError(f"no answer within {self._timeout} s"))
            self._all = [connection for connection in self._all if not connection.closed]

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in self._opening:
            task.cancel()
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
