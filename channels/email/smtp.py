"""The SMTP intake (`aiosmtpd`) on CC_SMTP_PORT, for CC_MAIL_DOMAINS.

Other recipients are refused (550) at RCPT; a message over CC_SMTP_MAX_MESSAGE_BYTES is refused (552) at
MAIL when it declares its SIZE, else as soon as it passes the limit (the rest is drained, not kept). A
message is answered 250 only once it is stored and on the bus: when the bus does not confirm, 451 and the
sending server retries with the same Message-ID, which is stored once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.intake import inbound_mail, sender_address
from channels.email.mailbox import MailStore
from channels.email.parsing import parse_mail
from channels.email.tokens import answered_ids, base_address, subject_ids
from channels.intake.admission import Admission
from channels.intake.publishing import InteractionPublisher
from contactcenter.errors import Unavailable
from contactcenter.logs import log_context
from contactcenter.metrics import IntakeMetrics
from contactcenter.settings import Settings
from schema import Channel
from schema.events import MailReceivedV1

log = logging.getLogger(__name__)

# Longer than RFC 5321's 1,000 (real mail breaks it, and Postfix takes such lines), still bounded.
LINE_LENGTH_LIMIT = 64 * 1024
# How long a client may stay silent, and how long one DATA may take, before the connection is closed (RFC 5321
# suggests minutes; aiosmtpd restarts the clock at each command, not during DATA).
IDLE_SECONDS = 300.0


class MailIntake:
    """aiosmtpd's handler: the story of one message — recipient, data, store, publish, answer."""

    def __init__(
        self,
        settings: Settings,
        publisher: InteractionPublisher,
        admission: Admission,
        metrics: IntakeMetrics,
        mailbox: MailStore,
    ) -> None:
        self._settings = settings
        self._domains = frozenset(settings.mail_domains)
        self._publisher = publisher
        self._admission = admission
        self._metrics = metrics
        self._mailbox = mailbox

    async def handle_RCPT(  # noqa: N802 — aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].lower().rstrip(".")
        if domain not in self._domains:
            return "550 5.1.1 no such recipient here"
        if len(envelope.rcpt_tos) >= self._settings.smtp_max_recipients:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 — aiosmtpd's hook name
        raw = envelope.original_content or b""
        with self._metrics.webhook(Channel.EMAIL):
            try:
                await self.take_in(raw, envelope_sender=envelope.mail_from or "", recipients=envelope.rcpt_tos)
                return "250 2.0.0 OK: queued"
            except Unavailable as exc:
                log.warning("mail not taken in: %s", exc.message)
                return "451 4.3.0 not taken in now; try again later"
            except Exception as exc:
                log.exception("mail not taken in (%s)", type(exc).__name__)
                return "451 4.3.0 not taken in now; try again later"

    async def take_in(self, raw: bytes, *, envelope_sender: str, recipients: Sequence[str]) -> None:
        """Parse, store and publish one mail (SMTP's or the IMAP poller's); return once it is on the bus. Raises
        `Unavailable` (the bus, PostgreSQL, the admission bound) for the caller to try again."""
        # Parsing a large message is CPU work: off the event loop.
        mail = await asyncio.to_thread(parse_mail, raw)
        verified = mail.dmarc_passed(self._settings.mail_trusted_authserv_id)
        recipient = base_address(recipients[0]) if recipients else ""
        # Threading headers first, then our token in the recipient's address, then in the subject.
        named = [*mail.thread_ids, *answered_ids(recipients), *subject_ids(mail.subject, recipients)]
        owner = await self._mailbox.thread_owner(named)
        sender = sender_address(mail, envelope_sender)
        automated = mail.automated(self._domains)
        with self._admission.slot(), log_context(provider_id=mail.message_id):
            attachment_ids = await self._mailbox.keep(
                mail,
                direction="inbound",
                client_address=owner or sender,
                event=MailReceivedV1(
                    message_id=mail.message_id,
                    verified=verified,
                    automated=automated,
                    bounce=mail.bounce,
                    parsed=mail.parsed,
                    attachments=len(mail.attachments),
                    threaded=bool(owner and owner != sender),
                ),
                raw=None if mail.parsed else raw,
                max_attachment=self._settings.mail_max_attachment_bytes,
            )
            # The loop guard: mail no one should answer (auto-submitted, bounces, daemons, our own domains) opens
            # no work. It joins the conversation it is filed under while that is open (a `message` to its
            # agent); otherwise it is kept (above, with its `mail.received`, automated) and offered to no one.
            # A mail the library could not read at all says nothing of itself: a person looks at it.
            if automated and mail.parsed and not await self._mailbox.conversation_open(owner or sender):
                log.info("automated mail kept, offered to no one")
                return
            interaction = inbound_mail(
                mail,
                envelope_sender=envelope_sender,
                recipient=recipient,
                verified=verified,
                thread_owner=owner,
                attachment_ids=attachment_ids,
            )
            with self._metrics.publishing(Channel.EMAIL), log_context(interaction_id=interaction.id):
                await self._publisher.publish(interaction)
            log.info("mail accepted: handed to the routers", extra={"verified": verified})


@dataclass(frozen=True)
class ConnectionBounds:
    """Connections one client address may hold at once, and all clients together: each may hold a message of
    up to CC_SMTP_MAX_MESSAGE_BYTES in memory, so their number bounds the memory mail can take."""

    per_client: int
    total: int
    # The longest one connection lasts, whatever it sends: then 421 and closed (a sender's server tries again).
    session_seconds: float


class _GuardedSmtp(SMTP):
    """aiosmtpd's protocol, within the `ConnectionBounds`."""

    line_length_limit = LINE_LENGTH_LIMIT

    def __init__(
        self, handler: MailIntake, connections: collections.Counter[str], bounds: ConnectionBounds, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self._connections = connections
        self._bounds = bounds
        self._client: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._client is None and self._original_transport is None:
            peer = transport.get_extra_info("peername")
            client = str(peer[0]) if peer else ""
            if self._connections[client] >= self._bounds.per_client or self._connections.total() >= self._bounds.total:
                _refuse(transport, b"421 4.7.0 too many connections; try again later\r\n")
                return
            self._connections[client] += 1
            self._client = client
            self._deadline = asyncio.get_running_loop().call_later(
                self._bounds.session_seconds, self._session_over, transport
            )
        super().connection_made(transport)

    def _session_over(self, transport: asyncio.BaseTransport) -> None:
        """The connection outlasted its session: what it sent since its last mail is dropped, told as temporary."""
        if not transport.is_closing():
            _refuse(transport, b"421 4.4.2 session too long; closing\r\n")

    def connection_lost(self, error: Exception | None) -> None:
        if self._client is None:
            return  # refused before it started
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._connections[self._client] -= 1
        if not self._connections[self._client]:
            del self._connections[self._client]
        self._client = None
        super().connection_lost(error)


def _refuse(transport: asyncio.BaseTransport, answer: bytes) -> None:
    """Answer and close. The transport is a stream's, which writes — but not always an `asyncio.WriteTransport`:
    uvloop's, which the service runs on, derives from none of asyncio's transport classes."""
    cast(asyncio.WriteTransport, transport).write(answer)
    transport.close()


class SmtpServer:
    """The listener (`ChannelServer`): started with the service's resources open, stopped before they close."""

    def __init__(self, settings: Settings, handler: MailIntake) -> None:
        self._settings = settings
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._connections: collections.Counter[str] = collections.Counter()
        self._tls = _tls_context(settings)

    @property
    def port(self) -> int:
        """The port it listens on (CC_SMTP_PORT, or the one the system chose for 0)."""
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _protocol(self) -> _GuardedSmtp:
        return _GuardedSmtp(
            self._handler,
            self._connections,
            ConnectionBounds(
                self._settings.smtp_connections_per_client,
                self._settings.smtp_max_connections,
                self._settings.smtp_session_seconds,
            ),
            data_size_limit=self._settings.smtp_max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self._settings.mail_domains[0] if self._settings.mail_domains else None,
            ident="contactcenter ESMTP",
            tls_context=self._tls,
            require_starttls=False,
            timeout=IDLE_SECONDS,
        )

    async def start(self) -> None:
        # aiosmtpd's own log names each peer at INFO and, at DEBUG, every line of every message (a customer's
        # words): ours says what happened to each mail instead.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self._settings.http_host, self._settings.smtp_port)
        log.info("SMTP intake listening on %s:%d", self._settings.http_host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_tls_cert is None or settings.smtp_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key)
    return context
