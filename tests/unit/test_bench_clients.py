"""The load generator's lean clients (`bench.websocket`, `bench.http`) against a real aiohttp server, and its
Twilio signatures against Twilio's own validator: what the bench measures is only as good as what it sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
from aiohttp import WSMsgType, web
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from bench.http import HttpClient
from bench.traffic import SmsTraffic
from bench.websocket import WebSocketClient, WebSocketError

LARGE = "x" * 70_000  # past both short length forms (125 and 65,535 bytes)
RELEASE = web.AppKey("release", asyncio.Event)  # holds the answer to a "slow" request until the test ends


async def _echo(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
    await socket.prepare(request)
    async for frame in socket:
        if frame.type is WSMsgType.PONG:
            await socket.send_str(f"pong:{frame.data.decode()}")
        elif frame.type is WSMsgType.TEXT and frame.data == "ping me":
            await socket.ping(b"hi")
        elif frame.type is WSMsgType.TEXT and frame.data == "bye":
            await socket.close()
        elif frame.type is WSMsgType.TEXT:
            await socket.send_str(f"echo:{frame.data}")
    return socket


async def _answer(request: web.Request) -> web.Response:
    body = await request.text()
    if body == "slow":
        await request.app[RELEASE].wait()
    return web.Response(status=201 if body == "create" else 200, text=f"got {body}")


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, int]]:
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_get("/ws", _echo)
    app.router.add_post("/post", _answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield "127.0.0.1", port
    app[RELEASE].set()
    await runner.cleanup()


async def _open(host: str, port: int, path: str, received: asyncio.Queue[str]) -> WebSocketClient:
    loop = asyncio.get_running_loop()
    _, socket = await loop.create_connection(
        lambda: WebSocketClient(f"{host}:{port}", path, received.put_nowait), host, port
    )
    await socket.opened
    return socket


async def test_the_websocket_client_speaks_text_both_ways_in_every_length_form(server: tuple[str, int]) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    socket = await _open(*server, "/ws", received)
    for text in ("short", "é" * 100, LARGE):
        socket.send_text(text)
        assert await asyncio.wait_for(received.get(), 5) == f"echo:{text}"
    socket.close()
    await asyncio.wait_for(socket.closed, 5)


async def test_the_websocket_client_answers_pings_and_hears_the_server_close(server: tuple[str, int]) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    socket = await _open(*server, "/ws", received)
    socket.send_text("ping me")
    assert await asyncio.wait_for(received.get(), 5) == "pong:hi"
    socket.send_text("bye")
    await asyncio.wait_for(socket.closed, 5)


async def test_a_refused_upgrade_fails_the_opening(server: tuple[str, int]) -> None:
    with pytest.raises(WebSocketError, match="404"):
        await _open(*server, "/nowhere", asyncio.Queue())


async def test_the_http_client_reads_each_status_over_kept_alive_connections(server: tuple[str, int]) -> None:
    client = HttpClient(*server, timeout=5)
    outcomes: asyncio.Queue[int | Exception] = asyncio.Queue()
    try:
        for body in ("create", "read", "read"):
            client.post("/post", body.encode(), {"Content-Type": "text/plain"}, outcomes.put_nowait)
            assert await asyncio.wait_for(outcomes.get(), 5) == (201 if body == "create" else 200)
        # One after the other: one connection carried them all.
        assert client.connections == 1
    finally:
        client.close()


async def test_an_unanswered_request_fails_at_its_deadline(server: tuple[str, int]) -> None:
    client = HttpClient(*server, timeout=0.2)
    outcomes: asyncio.Queue[int | Exception] = asyncio.Queue()
    try:
        client.post("/post", b"slow", {}, outcomes.put_nowait)
        assert isinstance(await asyncio.wait_for(outcomes.get(), 5), TimeoutError)
    finally:
        client.close()


def test_the_bench_signs_its_sms_as_twilio_s_own_validator_does() -> None:
    """The load generator signs without the `twilio` library (to spare the service's cores): the library
    must find each of its messages signed, over the form exactly as posted."""
    token = "bench-token"
    traffic = SmsTraffic(HttpClient("127.0.0.1", 8080, timeout=1), token, customers=10)
    validator = RequestValidator(token)
    url = "http://127.0.0.1:8080/channels/twilio/sms"
    sids = set()
    for _ in range(20):
        sid, body, headers = traffic.message()
        form = MultiDict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        assert form["MessageSid"] == form["SmsSid"] == sid and form["From"].startswith("+1415")
        assert form["Body"] == "Hello, is my order on its way?"
        assert validator.validate(url, form, headers["X-Twilio-Signature"])
        assert not validator.validate(url.replace("8080", "8081"), form, headers["X-Twilio-Signature"])
        sids.add(sid)
    assert len(sids) == 20
