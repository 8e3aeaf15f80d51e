"""A chat visitor proves the email it claims with a code sent to it (through a real SMTP relay on loopback,
aiosmtpd): the agent is then shown the email as proved — and still nothing is merged."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from contactcenter.settings import Settings
from tests.running import RunningService, run_service
from tests.visitors import ChatVisitor


class Relay:
    """An SMTP relay on loopback that keeps what it is handed."""

    def __init__(self) -> None:
        self.mail: list[EmailMessage] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802  # aiosmtpd's hook name
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.mail.append(message)
        self.arrived.set()
        return "250 OK"


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, int]]:
    handler = Relay()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(handler), "127.0.0.1", 0)
    yield handler, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def _code(relay: Relay) -> str:
    async with asyncio.timeout(10):
        await relay.arrived.wait()
    relay.arrived.clear()
    found = re.search(r"\b(\d{6})\b", relay.mail[-1].get_content())
    assert found is not None
    return found.group(1)


async def test_a_visitor_proves_its_email_with_the_code_sent_to_it_and_the_agent_sees_it_proved(
    service_settings: Settings, relay: tuple[Relay, int]
) -> None:
    handler, port = relay
    settings = service_settings.model_copy(update={"smtp_relay_url": SecretStr(f"smtp://127.0.0.1:{port}")})
    async with run_service(settings) as service:
        await service.create_queue("web", ["chat"])
        visitor = ChatVisitor(service.http, service.base_url)
        await visitor.connect()
        await visitor.send({"type": "verify_email"})
        refused = await visitor.receive("error")
        assert refused["error"]["field"] == "email"  # no email claimed yet

        await visitor.send({"type": "identify", "email": "Eve@Example.com"})
        await visitor.receive("identified")
        await visitor.send({"type": "verify_email"})
        assert await visitor.receive("code_sent") == {"type": "code_sent", "email": "eve@example.com"}
        code = await _code(handler)
        assert handler.mail[-1]["To"] == "eve@example.com"
        await visitor.send({"type": "verify_email"})  # again at once: one a minute
        assert (await visitor.receive("error"))["error"]["code"] == "conflict"

        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for bad, field in ((wrong, "code"), ("12345", "code"), ("abcdef", "code")):
            await visitor.send({"type": "verify", "code": bad})
            assert (await visitor.receive("error"))["error"]["field"] == field
        await visitor.send({"type": "verify", "code": code})
        assert await visitor.receive("verified") == {"type": "verified", "email": "eve@example.com"}

        desktop = await service.available_agent(queues=("web",))
        await visitor.say("It's me")
        offer = await desktop.receive("offer")
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        claims: dict[str, Any] = await desktop.receive("claims")
        assert (claims["email"], claims["email_verified"]) == ("eve@example.com", True)
        assert [identity["kind"] for identity in offer["card"]["identities"]] == ["visitor"]
        await visitor.close()
        await desktop.close()


async def test_five_wrong_codes_spend_it_and_without_a_relay_no_code_leaves(
    service: RunningService, service_settings: Settings, relay: tuple[Relay, int]
) -> None:
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.send({"type": "identify", "email": "eve@example.com"})
    await visitor.receive("identified")
    await visitor.send({"type": "verify_email"})
    assert (await visitor.receive("error"))["error"]["code"] == "unavailable"  # CC_SMTP_RELAY_URL is not set
    await visitor.close()

    handler, port = relay
    settings = service_settings.model_copy(update={"smtp_relay_url": SecretStr(f"smtp://127.0.0.1:{port}")})
    async with run_service(settings) as other:
        visitor = ChatVisitor(other.http, other.base_url)
        await visitor.connect()
        await visitor.send({"type": "identify", "email": "eve@example.com"})
        await visitor.receive("identified")
        await visitor.send({"type": "verify_email"})
        await visitor.receive("code_sent")
        code = await _code(handler)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            await visitor.send({"type": "verify", "code": wrong})
            assert (await visitor.receive("error"))["error"]["message"] == "this is not the code we sent"
        await visitor.send({"type": "verify", "code": code})  # the right one, too late
        assert (await visitor.receive("error"))["error"]["field"] == "code"
        await visitor.close()
