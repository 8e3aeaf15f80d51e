"""Guards the listening socket: every connection gets deadlines and every client address a cap on connections.

aiohttp bounds none of what a slow client does before or while it sends a request: a connection that sends its
headers a byte every few seconds, a body that never completes, or nothing at all, holds its place (and what
the handler took for it) for as long as it likes. Here each connection is watched from the moment it is
accepted:

- its first request's line and headers must be in within `header_read_seconds`, or it is closed;
- a request's body must be in within `body_read_seconds` of its headers, or the handler's read fails with
  `TimedOut` (a 408) and the connection closes after that answer;
- a kept-alive connection waits `idle_connection_seconds` for its next request (aiohttp's keep-alive timeout),
  and one holding unsent data the client does not take for as long is dropped;
- past `max_connections_per_client` from one address, a new connection gets a 503 and is closed at once.

Deadlines cost no timer per connection or request: one sweep a fraction of the shortest deadline apart checks
every open connection. What is cut off is logged as a summary, not a line per connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from contactcenter.errors import TimedOut
from contactcenter.http_errors import error_response
from contactcenter.metrics import METRICS
from contactcenter.settings import Settings
from schema import ErrorBody, ErrorDetail

log = logging.getLogger(__name__)

# The sweep runs this often within the shortest deadline, and at least once a second.
SWEEPS_PER_DEADLINE = 4


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float
    body_seconds: float
    idle_seconds: float
    max_per_client: int

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_seconds=settings.header_read_seconds,
            body_seconds=settings.body_read_seconds,
            idle_seconds=settings.idle_connection_seconds,
            max_per_client=settings.max_connections_per_client,
        )


def _refusal() -> bytes:
    body = ErrorBody(
        error=ErrorDetail(code="unavailable", message="too many connections from your address; retry shortly")
    ).model_dump_json(exclude_none=True)
    return (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}"
    ).encode()


REFUSAL = _refusal()


class _JsonAnswers(RequestHandler):
    """aiohttp's handler, but what aiohttp answers itself — a request it cannot parse (not HTTP, an over-long
    line, a NUL in a header), a handler that raised past our middleware — comes in the JSON error shape, like
    every other answer. What cannot be parsed is logged at debug: anyone can send it, and a traceback per bad
    request is a log flood an attacker controls. What raised is our defect, and keeps its traceback."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer has begun: the connection can only be dropped
            raise ConnectionError("an answer was already under way")
        if status >= 500:
            log.error("answering %s %s failed", request.method, request.path, exc_info=exc)
            response = error_response(status, "internal", "the service failed to answer; try again")
        else:
            log.debug("a request that is not HTTP we read (%s): %s", status, type(exc).__name__)
            response = error_response(status, "bad_request", "the request could not be read as HTTP/1.1")
        response.force_close()
        return response


def _answer_in_json(handler: RequestHandler) -> RequestHandler:
    # aiohttp makes its handlers itself (`web.Server.__call__`) and has no setting for their class: the one it
    # made becomes ours, a subclass that adds no state (same slots), so only its `handle_error` differs.
    handler.__class__ = _JsonAnswers
    return handler


class SummaryLog:
    """One warning when something starts happening, then how many more every `every` seconds while it goes on."""

    def __init__(self, first: str, more: str, *, every: float = 10.0) -> None:
        self._first = first
        self._more = more
        self._every = every
        self._unreported = 0
        self._report: asyncio.TimerHandle | None = None

    def note(self) -> None:
        if self._report is not None:
            self._unreported += 1
            return
        log.warning(self._first)
        self._report = asyncio.get_running_loop().call_later(self._every, self._summarise)

    def _summarise(self) -> None:
        if not self._unreported:
            self._report = None  # the next one is news again
            return
        log.warning(self._more, self._unreported, self._every)
        self._unreported = 0
        self._report = asyncio.get_running_loop().call_later(self._every, self._summarise)

    def stop(self) -> None:
        if self._report is not None:
            self._report.cancel()
            self._report = None


class _Connection(asyncio.Protocol):
    """Stands between the transport and aiohttp's handler for one connection, so the guard sees it open and
    close; everything else goes straight to the handler."""

    __slots__ = ("admitted", "body", "body_due", "client", "guard", "handler", "headers_due", "stalled", "transport")

    def __init__(self, guard: ConnectionGuard, handler: RequestHandler, headers_due: float) -> None:
        self.guard = guard
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.admitted = False
        self.headers_due: float | None = headers_due  # None once the first request's headers are in
        self.body: StreamReader | None = None  # the body being read, until it is all in
        self.body_due = 0.0
        self.stalled: float | None = None  # since when unsent data has waited for the client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport (uvloop's is one without deriving from asyncio's class).
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self.admitted = self.guard.admit(self)
        if not self.admitted:
            transport.write(REFUSAL)
            transport.close()
            return
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.handler.data_received(data)

    def eof_received(self) -> None:
        if self.admitted:
            self.handler.eof_received()

    def pause_writing(self) -> None:
        if self.admitted:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            self.guard.release(self)
            self.handler.connection_lost(exc)


class ConnectionGuard:
    """Watches the connections of one aiohttp server (see the module's docstring)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self._limits = limits
        self._open: dict[RequestHandler, _Connection] = {}
        self._per_client: dict[str, int] = {}
        self._sweep_every = min(1.0, min(limits.header_seconds, limits.body_seconds) / SWEEPS_PER_DEADLINE)
        self._sweep: asyncio.TimerHandle | None = None
        self.refused = 0
        self.cut_off = 0
        self._logs = {
            "refused": SummaryLog(
                f"a client holds {limits.max_per_client} connections, the bound (CC_MAX_CONNECTIONS_PER_CLIENT): "
                "refusing its next ones with 503",
                "refused %d more connections past the per-client bound in the last %g s",
            ),
            "headers": SummaryLog(
                f"closed a connection that sent no complete request within {limits.header_seconds} s "
                "(CC_HEADER_READ_SECONDS)",
                "closed %d more connections without a complete request in the last %g s",
            ),
            "body": SummaryLog(
                f"answered 408 to a request whose body was not in within {limits.body_seconds} s "
                "(CC_BODY_READ_SECONDS)",
                "answered 408 to %d more slow bodies in the last %g s",
            ),
            "stalled": SummaryLog(
                f"dropped a connection whose client took none of our data for {limits.idle_seconds} s "
                "(CC_IDLE_CONNECTION_SECONDS)",
                "dropped %d more connections whose clients stopped reading in the last %g s",
            ),
        }

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """What the listening socket makes for each connection it accepts: aiohttp's handler, guarded."""
        loop = asyncio.get_running_loop()
        server.request_factory = self._headers_in(server.request_factory)

        def guarded() -> asyncio.Protocol:
            return _Connection(self, _answer_in_json(server()), loop.time() + self._limits.header_seconds)

        return guarded

    def start(self) -> None:
        self._sweep = asyncio.get_running_loop().call_later(self._sweep_every, self._enforce_deadlines)

    def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for summary in self._logs.values():
            summary.stop()

    def admit(self, connection: _Connection) -> bool:
        held = self._per_client.get(connection.client, 0)
        if held >= self._limits.max_per_client:
            self.refused += 1
            self._logs["refused"].note()
            return False
        self._per_client[connection.client] = held + 1
        self._open[connection.handler] = connection
        return True

    def release(self, connection: _Connection) -> None:
        del self._open[connection.handler]
        held = self._per_client[connection.client] - 1
        if held:
            self._per_client[connection.client] = held
        else:
            del self._per_client[connection.client]

    def _headers_in(self, make_request: Callable[..., web.BaseRequest]) -> Callable[..., web.BaseRequest]:
        """aiohttp makes the request once its headers are in: from then on the body's deadline runs."""
        loop = asyncio.get_running_loop()
        body_seconds = self._limits.body_seconds

        def make(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> web.BaseRequest:
            connection = self._open.get(protocol)
            if connection is not None:
                connection.headers_due = None
                if not payload.is_eof():
                    connection.body, connection.body_due = payload, loop.time() + body_seconds
            return make_request(message, payload, protocol, writer, task)

        return make

    def _enforce_deadlines(self) -> None:
        now = asyncio.get_running_loop().time()
        for connection in list(self._open.values()):
            if connection.headers_due is not None:
                if now >= connection.headers_due:
                    connection.headers_due = None  # counted once, though the close is only under way
                    self._cut_off(connection, "headers")
                    connection.handler.force_close()
                continue
            body = connection.body
            if body is not None:
                if body.is_eof():
                    connection.body = None
                elif now >= connection.body_due:
                    connection.body = None
                    self._cut_off(connection, "body")
                    body.set_exception(TimedOut("the request's body did not arrive in time", field="body"))
                    connection.handler.close()  # once the 408 is out
            self._drop_if_stalled(connection, now)
        self._sweep = asyncio.get_running_loop().call_later(self._sweep_every, self._enforce_deadlines)

    def _drop_if_stalled(self, connection: _Connection, now: float) -> None:
        """A client that stops reading leaves our answers in the socket's buffer, where closing would wait for
        it forever: past the idle deadline it is aborted."""
        transport = connection.transport
        if transport is None or not transport.get_write_buffer_size():
            connection.stalled = None
        elif connection.stalled is None:
            connection.stalled = now
        elif now - connection.stalled >= self._limits.idle_seconds:
            self._cut_off(connection, "stalled")
            transport.abort()

    def _cut_off(self, connection: _Connection, reason: str) -> None:
        self.cut_off += 1
        self._logs[reason].note()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections are guarded: what `contactcenter serve` and the tests listen on."""

    __slots__ = ("_guard", "_host", "_port", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        host: str,
        port: int,
        *,
        backlog: int = 128,
        sock: socket.socket | None = None,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard
        self._sock = sock  # already bound (a test that must know its port before the app is made)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def guard(self) -> ConnectionGuard:
        return self._guard

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        factory = self._guard.protocol_factory(server)
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(factory, sock=self._sock, backlog=self._backlog)
        else:
            self._server = await loop.create_server(factory, self._host, self._port, backlog=self._backlog)
        self._guard.start()

    async def stop(self) -> None:
        self._guard.stop()
        await super().stop()


def guarded_runner(app: web.Application, settings: Settings, *, handle_signals: bool = False) -> web.AppRunner:
    """The app's runner with the idle deadline as aiohttp's keep-alive timeout (its own default is an hour)."""
    return web.AppRunner(
        app, handle_signals=handle_signals, access_log=None, keepalive_timeout=settings.idle_connection_seconds
    )


def guarded_site(
    runner: web.AppRunner,
    settings: Settings,
    host: str,
    port: int,
    *,
    backlog: int = 128,
    sock: socket.socket | None = None,
) -> GuardedSite:
    guard = ConnectionGuard(ConnectionLimits.of(settings))
    if (metrics := runner.app.get(METRICS)) is not None:
        metrics.watch_connections(guard)  # what it refuses and cuts off shows in /metrics
    return GuardedSite(runner, guard, host, port, backlog=backlog, sock=sock)
