"""The SMTP intake tried as an attacker would: too many recipients, too many connections, endless lines,
NUL bytes and invalid UTF-8 in headers; STARTTLS when a certificate is configured; the roles that run it."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import uvloop

from channels.email.smtp import MailIntake, SmtpServer
from contactcenter.host.app import CHANNEL_INTAKES, Role
from contactcenter.settings import Settings
from tests.mail import OUR_DOMAIN, SUPPORT, customer_mail, send_mail, smtp_port
from tests.running import RunningService, run_service


@pytest.fixture
def mail_settings(service_settings: Settings) -> Settings:
    return service_settings.model_copy(
        update={
            "mail_domains": [OUR_DOMAIN],
            "smtp_port": 0,
            "smtp_max_recipients": 3,
            "smtp_connections_per_client": 2,
        }
    )


@pytest.fixture
async def mail_service(mail_settings: Settings) -> AsyncIterator[RunningService]:
    async with run_service(mail_settings) as running:
        yield running


def _rcpt_codes(port: int, recipients: list[str]) -> list[int]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("ann@customer.example")
        return [client.rcpt(address)[0] for address in recipients]


async def test_a_client_that_keeps_its_connection_alive_with_noop_is_closed_at_the_session_bound(
    mail_settings: Settings,
) -> None:
    """aiosmtpd restarts its idle clock at every command: a NOOP now and then held a connection slot for ever,
    and a few addresses could hold them all. The session's bound closes it, and the slot serves the next."""
    async with run_service(mail_settings.model_copy(update={"smtp_session_seconds": 1.5})) as service:
        port = smtp_port(service)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await reader.readline()).startswith(b"220")
        answers: list[bytes] = []
        async with asyncio.timeout(30):
            while not reader.at_eof():
                writer.write(b"NOOP\r\n")
                answer = await reader.readline()
                if answer:
                    answers.append(answer)
                await asyncio.sleep(0.2)
        writer.close()
        assert answers[0].startswith(b"250") and answers[-1].startswith(b"421"), answers
        assert await send_mail(port, customer_mail(subject="after"), sender="ann@customer.example") == {}


async def test_recipients_past_the_bound_are_refused_for_now(mail_service: RunningService) -> None:
    recipients = [f"r{n}@{OUR_DOMAIN}" for n in range(5)]
    codes = await asyncio.to_thread(_rcpt_codes, smtp_port(mail_service), recipients)
    assert codes == [250, 250, 250, 452, 452]


async def test_connections_past_the_bound_per_client_are_refused_with_421(mail_service: RunningService) -> None:
    port = smtp_port(mail_service)
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    for reader, _ in held:
        assert (await reader.readline()).startswith(b"220")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"421")
    assert await reader.read() == b""  # closed
    writer.close()
    # Once one closes, a new connection is welcome again.
    held[0][1].close()
    await held[0][1].wait_closed()
    async with asyncio.timeout(10):
        while True:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            greeting = await reader.readline()
            writer.close()
            if greeting.startswith(b"220"):
                break
            await asyncio.sleep(0.05)
    for _, w in held[1:]:
        w.close()


async def test_connections_past_the_bound_of_all_clients_together_are_refused_with_421(
    mail_settings: Settings,
) -> None:
    settings = mail_settings.model_copy(update={"smtp_connections_per_client": 100, "smtp_max_connections": 2})
    async with run_service(settings) as service:
        port = smtp_port(service)
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for reader, _ in held:
            assert (await reader.readline()).startswith(b"220")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await reader.readline()).startswith(b"421")
        writer.close()
        for _, held_writer in held:
            held_writer.close()


async def _smtp_session(port: int, sender: bytes, recipient: bytes) -> list[bytes]:
    """One mail sent byte for byte (smtplib refuses to write these addresses): each reply's first line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        replies = [await reader.readline()]
        for line in (b"EHLO client.example", b"MAIL FROM:" + sender, b"RCPT TO:" + recipient, b"DATA"):
            writer.write(line + b"\r\n")
            reply = await reader.readline()
            while reply[3:4] == b"-":  # a multi-line reply (EHLO's)
                reply = await reader.readline()
            replies.append(reply)
        if replies[-1].startswith(b"354"):
            message_id = f"<{uuid.uuid4().hex}@client.example>".encode()
            writer.write(b"Subject: envelope only\r\nMessage-ID: " + message_id + b"\r\n\r\nhello\r\n.\r\n")
            replies.append(await reader.readline())
        return replies
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("sender", "recipient"),
    [
        (b"<a\x00b@customer.example>", b"<support@shop.example>"),
        (b"<\xff\xfe@customer.example>", b"<support@shop.example>"),
        (b"<ann@customer.example>", b"<sup\x00port@shop.example>"),
        (b"<ann@customer.example>", b"<sup\xffport@shop.example>"),
        (b"<ann@customer.example>", b"<support+\x1b@shop.example>"),
    ],
    ids=["nul-sender", "bytes-sender", "nul-recipient", "bytes-recipient", "escape-recipient"],
)
async def test_odd_bytes_in_the_envelope_are_taken_in_and_stored_never_answered_try_later(
    mail_service: RunningService, sender: bytes, recipient: bytes
) -> None:
    """A mail without a From header is filed by its envelope's sender: what PostgreSQL cannot hold there must not
    make every retry of the sending server fail (451 for ever). Answered 250 once stored (kept, offered to no
    one: a mail without a From is no one's to answer)."""
    replies = await _smtp_session(smtp_port(mail_service), sender, recipient)
    assert replies[-1].startswith(b"250"), replies
    stored = "SELECT count(*) FROM email_messages WHERE direction = 'inbound' AND subject = 'envelope only'"
    assert await mail_service.services.pool.fetchval(stored) == 1


def _endless_line(port: int) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("ann@customer.example")
        client.rcpt(SUPPORT)
        return client.data(b"Subject: long\r\n\r\n" + b"x" * 200_000 + b"\r\n")


async def test_a_line_past_the_bound_is_refused_not_kept(mail_service: RunningService) -> None:
    code, _ = await asyncio.to_thread(_endless_line, smtp_port(mail_service))
    assert code == 500


async def test_nul_bytes_and_invalid_utf8_in_headers_are_taken_in_and_reach_an_agent(
    mail_service: RunningService,
) -> None:
    await mail_service.create_queue("support", ["email"])
    desktop = await mail_service.available_agent(queues=("support",))
    raw = (
        b"From: \xff\xfeEve \x00<eve@customer.example>\r\nTo: support@shop.example\r\n"
        b"Subject: caf\xe9\x00 =?utf-8?q?=E2=82?=\r\nMessage-ID: <nul\x00id@customer.example>\r\n"
        b"Content-Type: text/plain; charset=klingon\r\n\r\nbody \x00 with \xc3\x28 bad bytes\r\n"
    )
    assert await send_mail(smtp_port(mail_service), raw, sender="eve@customer.example") == {}
    offer = await desktop.receive("offer")
    interaction = offer["reservation"]["interaction"]
    assert "\x00" not in interaction["body"] and "body" in interaction["body"]
    assert interaction["from_address"] == "eve@customer.example"
    await desktop.close()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={OUR_DOMAIN}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _send_over_starttls(port: int, raw: bytes) -> dict[str, tuple[int, bytes]]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo()
        return client.sendmail("ann@customer.example", [SUPPORT], raw)


async def test_starttls_is_offered_when_a_certificate_is_configured(mail_settings: Settings, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = mail_settings.model_copy(update={"smtp_tls_cert": cert, "smtp_tls_key": key})
    async with run_service(settings) as service:
        await service.create_queue("support", ["email"])
        desktop = await service.available_agent(queues=("support",))
        refused = await asyncio.to_thread(_send_over_starttls, smtp_port(service), customer_mail().as_bytes())
        assert refused == {}
        assert (await desktop.receive("offer"))["reservation"]["interaction"]["channel"] == "email"
        await desktop.close()


async def test_role_smtp_runs_the_intake_and_role_api_does_not(mail_settings: Settings) -> None:
    async with run_service(mail_settings, Role.SMTP) as service:
        assert await send_mail(smtp_port(service), customer_mail()) == {}
    async with run_service(mail_settings, Role.API) as service:
        assert service.app.get(CHANNEL_INTAKES) is None


async def test_no_mail_domains_no_listener(service_settings: Settings) -> None:
    port_taken = socket.socket()
    port_taken.bind(("127.0.0.1", 0))
    port_taken.listen()
    settings = service_settings.model_copy(update={"smtp_port": port_taken.getsockname()[1]})
    try:
        async with run_service(settings) as service:  # would fail to bind if it tried
            assert service.app[CHANNEL_INTAKES] == []
    finally:
        port_taken.close()


def test_the_listeners_421s_reach_the_client_on_uvloop_the_loop_the_service_runs_on() -> None:
    """`contactcenter serve` runs on uvloop, whose transports derive from none of asyncio's classes: an `isinstance`
    on one held there only — a connection past the bound got a traceback and no 421, a session past its bound was
    closed without its 421. The suite's own loop is asyncio's, so this runs the listener on uvloop itself."""

    async def scenario() -> tuple[bytes, bytes]:
        settings = Settings(
            mail_domains=[OUR_DOMAIN], smtp_port=0, smtp_connections_per_client=1, smtp_session_seconds=1.0
        )
        server = SmtpServer(settings, cast(MailIntake, object()))  # nothing reaches the handler: no mail is sent
        await server.start()
        writers: list[asyncio.StreamWriter] = []
        try:
            first, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writers.append(writer)
            assert (await first.readline()).startswith(b"220")
            second, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writers.append(writer)
            async with asyncio.timeout(10):
                return await second.readline(), await first.readline()
        finally:
            for writer in writers:
                writer.close()
                await writer.wait_closed()
            await server.stop()

    refused, session_over = uvloop.run(scenario())
    assert refused.startswith(b"421 4.7.0"), refused
    assert session_over.startswith(b"421 4.4.2"), session_over
