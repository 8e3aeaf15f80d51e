"""Slow and abusive clients cannot starve the intake: connections that hold the service without finishing their
request are cut off at their deadlines, and signed webhooks go on being taken in meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from contactcenter.host.connections import ConnectionGuard
from contactcenter.settings import Settings
from contactcenter.store.cards import Cards
from schema import ClientCard, IdentityKind
from tests.running import RunningService, run_service

SMS_PATH = "/channels/twilio/sms"


class RawClient:
    """A client on a bare TCP socket, sending exactly what an attacker would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_the_service(self, timeout: float = 10) -> bytes:
        """What the service said before it closed the connection (b"" for nothing)."""
        async with asyncio.timeout(timeout):
            try:
                return await self.reader.read()
            except ConnectionResetError:
                return b""

    async def answer(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of the service's answer."""
        async with asyncio.timeout(timeout):
            status = await self.reader.readline()
            headers = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers["content-length"]))
        return int(status.split()[1]), json.loads(body)

    async def trickle(self, data: bytes, every: float) -> None:
        """Send `data` a byte at a time, `every` seconds apart, until the service closes the connection."""
        try:
            for byte in data:
                await self.send(bytes([byte]))
                await asyncio.sleep(every)
        except ConnectionError:
            return


@contextlib.asynccontextmanager
async def raw_clients(service: RunningService, count: int) -> AsyncIterator[list[RawClient]]:
    host, port = service.base_url.removeprefix("http://").split(":")
    clients = [RawClient(*await asyncio.open_connection(host, int(port))) for _ in range(count)]
    try:
        yield clients
    finally:
        for client in clients:
            client.writer.close()


def sms_head(service: RunningService, content_length: int) -> bytes:
    host = service.base_url.removeprefix("http://")
    return (
        f"POST {SMS_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {content_length}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: bm90IGEgc2lnbmF0dXJl\r\n\r\n"
    ).encode()


def api_head(service: RunningService, content_length: int) -> bytes:
    host = service.base_url.removeprefix("http://")
    return (
        f"POST /api/v1/queues HTTP/1.1\r\nHost: {host}\r\nContent-Length: {content_length}\r\n"
        f"Content-Type: application/json\r\nAuthorization: {service.admin_headers()['Authorization']}\r\n\r\n"
    ).encode()


def agent_socket_head(service: RunningService) -> bytes:
    host = service.base_url.removeprefix("http://")
    return (
        f"GET /api/v1/agents/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()


# Deadlines short enough for a test, long enough for a genuine request on a slow, shared machine.
QUICK_DEADLINES = {"header_read_seconds": 2.0, "body_read_seconds": 1.0}


async def signed_sms_get_in(service: RunningService, *numbers: str) -> None:
    """Each number's SMS is answered 200 and stored on its card."""
    for number in numbers:
        response = await service.post_sms(sender=number, body="still there?")
        assert response.status == 200, await response.text()
    for number in numbers:
        card = await card_when_stored(service.services.cards, number)
        assert [entry.body for entry in card.timeline] == ["still there?"]


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def guard_of(service: RunningService) -> ConnectionGuard:
    assert service.guard is not None
    return service.guard


async def card_when_stored(cards: Cards, number: str, timeout: float = 10) -> ClientCard:
    async with asyncio.timeout(timeout):
        while (card := await cards.by_identity(IdentityKind.PHONE, number)) is None:
            await asyncio.sleep(0.02)
    return ClientCard.model_validate_json(card)


async def test_slow_bodies_past_the_admission_bound_do_not_keep_signed_sms_out(service_settings: Settings) -> None:
    """The attack of issue 13: more slow bodies than the admission bound, held open (each within the form's
    size budget, so only the order of reading, checking and admitting keeps them out). Genuine SMS get in."""
    async with run_service(service_settings.model_copy(update={"webhook_concurrency": 5})) as service:
        await service.create_queue("sales", ["sms"])
        async with raw_clients(service, 20) as slow:
            for client in slow:
                await client.send(sms_head(service, 10_000) + b"From=%2B1415")
            await signed_sms_get_in(service, "+14155550140", "+14155550141", "+14155550142")


async def test_a_body_not_in_within_its_deadline_gets_a_408_and_the_connection_closes(
    service_settings: Settings,
) -> None:
    settings = service_settings.model_copy(update={"webhook_concurrency": 5, **QUICK_DEADLINES})
    async with run_service(settings) as service:
        await service.create_queue("sales", ["sms"])
        async with raw_clients(service, 20) as slow:
            for client in slow:
                await client.send(sms_head(service, 10_000) + b"From=%2B1415")
            await signed_sms_get_in(service, "+14155550143")
            for client in slow:
                status, body = await client.answer()
                assert (status, body["error"]["code"], body["error"]["field"]) == (408, "timeout", "body")
                assert await client.closed_by_the_service() == b""


async def test_a_slow_json_body_gets_a_408_naming_the_body(service_settings: Settings) -> None:
    async with contextlib.AsyncExitStack() as stack:
        service = await stack.enter_async_context(run_service(service_settings.model_copy(update=QUICK_DEADLINES)))
        (slow,) = await stack.enter_async_context(raw_clients(service, 1))
        await slow.send(api_head(service, 100) + b'{"name": "sa')
        status, body = await slow.answer()
        assert (status, body["error"]["code"], body["error"]["field"]) == (408, "timeout", "body")
        assert await slow.closed_by_the_service() == b""


async def test_a_twilio_form_over_its_size_budget_is_refused_at_once(service: RunningService) -> None:
    """Twilio's forms are small: one announcing 100 kB is refused before a byte of it is read."""
    async with raw_clients(service, 1) as (big,):
        await big.send(sms_head(service, 100_000))
        status, body = await big.answer()
        assert (status, body["error"]["code"], body["error"]["field"]) == (413, "too_large", "body")


async def test_a_chunked_twilio_form_past_its_size_budget_is_refused(service: RunningService) -> None:
    host = service.base_url.removeprefix("http://")
    chunk = b"Body=" + b"x" * 70_000
    async with raw_clients(service, 1) as (big,):
        await big.send(
            f"POST {SMS_PATH} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: bm90IGEgc2lnbmF0dXJl\r\n\r\n"
            f"{len(chunk):x}\r\n".encode()
            + chunk
            + b"\r\n0\r\n\r\n"
        )
        status, body = await big.answer()
        assert (status, body["error"]["code"], body["error"]["field"]) == (413, "too_large", "body")


@pytest.mark.parametrize("head", [sms_head, agent_socket_head], ids=["webhook", "agent socket handshake"])
async def test_headers_sent_a_byte_at_a_time_are_cut_off_and_signed_sms_flow_meanwhile(
    service_settings: Settings, head: Callable[..., bytes]
) -> None:
    async with run_service(service_settings.model_copy(update=QUICK_DEADLINES)) as service:
        await service.create_queue("sales", ["sms"])
        request_head = head(service, 100) if head is sms_head else head(service)
        async with raw_clients(service, 10) as slow:
            trickles = [asyncio.create_task(client.trickle(request_head, every=0.2)) for client in slow]
            await signed_sms_get_in(service, "+14155550144")
            for client in slow:
                assert await client.closed_by_the_service() == b""
            await asyncio.gather(*trickles)


async def test_connections_that_never_send_are_closed(service_settings: Settings) -> None:
    async with run_service(service_settings.model_copy(update=QUICK_DEADLINES)) as service:
        await service.create_queue("sales", ["sms"])
        async with raw_clients(service, 10) as silent:
            await signed_sms_get_in(service, "+14155550145")
            for client in silent:
                assert await client.closed_by_the_service() == b""


async def test_past_the_connections_of_one_client_a_new_one_gets_a_503_and_refusals_are_summarised(
    service_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="contactcenter.host.connections")
    async with run_service(service_settings.model_copy(update={"max_connections_per_client": 4})) as service:
        await service.create_queue("sales", ["sms"])
        ours = guard_of(service).open_connections  # the test's own HTTP session keeps one alive
        async with raw_clients(service, 4) as held:
            async with raw_clients(service, 3) as refused:
                for client in refused:
                    status, body = await client.answer()
                    assert (status, body["error"]["code"]) == (503, "unavailable")
                    assert await client.closed_by_the_service() == b""
            assert guard_of(service).refused >= 3
            refusals = [r for r in caplog.records if "CC_MAX_CONNECTIONS_PER_CLIENT" in r.getMessage()]
            assert len(refusals) == 1, "one line says it began; the rest wait for the summary"
            for client in held:
                client.writer.close()
            await until(lambda: guard_of(service).open_connections == ours)
        await signed_sms_get_in(service, "+14155550146")
        async with service.http.get(f"{service.base_url}/metrics") as scraped:
            refused_line = next(
                line for line in (await scraped.text()).splitlines() if line.startswith("cc_connections_refused_total ")
            )
        assert float(refused_line.split()[1]) >= 3, "an operator sees the refusals too"


async def test_an_agent_socket_whose_desktop_stops_reading_is_dropped(service_settings: Settings) -> None:
    """Notices pile up unsent for a desktop that reads nothing: past the idle deadline its connection is dropped
    (closing it politely would wait for the client to take what is queued, which it never does)."""
    async with run_service(service_settings.model_copy(update={"idle_connection_seconds": 1.0})) as service:
        await service.create_queue("sales", ["sms"])
        agent = await service.create_agent("Ann", ["sales"])
        host, port = service.base_url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills at once
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock)
        desktop = RawClient(reader, writer)
        try:
            head = agent_socket_head(service).replace(b"/ws ", f"/ws?token={agent['token']} ".encode())
            await desktop.send(head)
            async with asyncio.timeout(10):
                assert (await reader.readline()).startswith(b"HTTP/1.1 101")
                while await reader.readline() not in (b"\r\n", b""):
                    pass
            # From here on the desktop reads nothing.
            guard, notice, agent_id = guard_of(service), b'"' + b"x" * 60_000 + b'"', uuid.UUID(agent["id"])
            async with asyncio.timeout(20):
                while not guard.cut_off:
                    await service.services.relay.send(agent_id, notice)
                    await asyncio.sleep(0.05)
            await desktop.closed_by_the_service(timeout=20)  # returns once the service has closed it
        finally:
            writer.close()


async def test_clients_hanging_up_mid_body_are_no_service_failure_and_flood_no_log(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that leaves is nobody to answer, and no dependency of ours failed: nothing to warn about."""
    caplog.set_level(logging.INFO, logger="contactcenter")
    await service.create_queue("sales", ["sms"])
    ours = guard_of(service).open_connections
    async with raw_clients(service, 20) as leaving:
        for client in leaving:
            await client.send(sms_head(service, 10_000) + b"From=%2B1415")
        await until(lambda: guard_of(service).open_connections == ours + 20)
    await until(lambda: guard_of(service).open_connections == ours)
    await signed_sms_get_in(service, "+14155550147")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
