"""Mail as the service's real peers speak it: a sending server (smtplib, in a thread, as another host would)
and the relay replies leave through (a local aiosmtpd that keeps what it is handed, or refuses on demand)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.smtp import SmtpServer
from contactcenter.host.app import CHANNEL_INTAKES
from tests.running import RunningService

OUR_DOMAIN = "shop.example"
SUPPORT = f"support@{OUR_DOMAIN}"


def smtp_port(service: RunningService) -> int:
    (server,) = [s for s in service.app[CHANNEL_INTAKES] if isinstance(s, SmtpServer)]
    return server.port


def customer_mail(
    *,
    sender: str = "Ann Customer <ann@customer.example>",
    subject: str = "My order",
    text: str = "Where is it?",
    message_id: str | None = "<order-1@customer.example>",
    headers: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = SUPPORT
    mail["Subject"] = subject
    if message_id is not None:
        mail["Message-ID"] = message_id
    for name, value in headers:
        mail[name] = value
    mail.set_content(text)
    return mail


def _send_now(port: int, raw: bytes, sender: str, recipients: Sequence[str]) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(sender, list(recipients), raw)


async def send_mail(
    port: int,
    mail: EmailMessage | bytes,
    *,
    sender: str = "ann@customer.example",
    recipients: Sequence[str] = (SUPPORT,),
) -> dict[str, tuple[int, bytes]]:
    """What a sending server does: one SMTP session (raises smtplib's errors on a refusal)."""
    raw = mail if isinstance(mail, bytes) else mail.as_bytes()
    return await asyncio.to_thread(_send_now, port, raw, sender, recipients)


class Relay:
    """The mail relay replies leave through: keeps each message it accepts; `refuse` answers with that code."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: str | None = None
        self._server: asyncio.Server | None = None
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"smtp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 — aiosmtpd's hook name
        if self.refuse is not None:
            return self.refuse
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        self.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
        self.arrived.set()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, decode_data=False), "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
