"""An agent's reply out through CC_SMTP_RELAY_URL (`aiosmtplib`): text with an HTML alternative, threaded
(`In-Reply-To` and `References` naming the customer's message), with a Message-ID of our domain. A relay
that refuses for now (4xx) or does not answer is tried again a few times; then the agent is told
(`Unavailable`), never left to believe it left. A permanent refusal (5xx) is `Invalid`."""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

import aiosmtplib

from channels.email.mailbox import MailStore, ThreadHead
from channels.email.parsing import ParsedMail, one_line
from channels.email.tokens import base_address, reply_message_id, reply_subject, reply_to
from contactcenter.agents.outbound import OutboundMessage, ReplyNotTaken, ReplyRefused
from contactcenter.errors import Invalid, Unavailable
from schema import IdentityKind
from schema.events import MailFailedV1, MailSentV1

log = logging.getLogger(__name__)

SEND_TIMEOUT = 10.0
FIRST_PAUSE = 0.5


class RelaySender:
    # A reply is one person's answer, not a document: longer belongs in an attachment.
    max_length = 100_000
    address_kind = IdentityKind.EMAIL

    def __init__(
        self, relay_url: str | None, mailbox: MailStore, *, tries: int, default_domain: str, quote_history: bool
    ) -> None:
        self._quote_history = quote_history
        self._relay = urlsplit(relay_url) if relay_url else None
        self._mailbox = mailbox
        self._tries = tries
        self._default_domain = default_domain or "localhost"

    async def send(self, message: OutboundMessage) -> str:
        if len(message.body) > self.max_length:
            raise Invalid(f"a reply carries at most {self.max_length} characters", field="text")
        if self._relay is None:
            raise Unavailable("no mail relay is configured (CC_SMTP_RELAY_URL)")
        mail = await self._compose(message)
        message_id = str(mail["Message-ID"]).strip("<>")
        await self._send_with_retries(mail, message_id, message.in_reply_to)
        await self._mailbox.keep(
            ParsedMail(
                message_id=message_id,
                sender=message.from_address,
                subject=str(mail["Subject"]),
                text=message.body,
                in_reply_to=message.in_reply_to,
                references=tuple(r.strip("<>") for r in str(mail.get("References", "")).split()),
            ),
            direction="outbound",
            client_address=message.to_address,
            raw=None,
            max_attachment=0,
            event=MailSentV1(message_id=message_id, in_reply_to=message.in_reply_to),
        )
        return message_id

    async def _compose(self, message: OutboundMessage) -> EmailMessage:
        head = await self._mailbox.thread_head(message.in_reply_to) if message.in_reply_to else None
        domain = message.from_address.rpartition("@")[2] or self._default_domain
        message_id = reply_message_id(domain)
        mail = EmailMessage()
        mail["From"] = base_address(message.from_address)
        mail["To"] = message.to_address
        # The token in the subject too, for clients that drop the threading headers and the Reply-To.
        mail["Subject"] = reply_subject(one_line(head.subject if head is not None else "", 998), message_id)
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = f"<{message_id}>"
        # The token, for clients that drop In-Reply-To and References: answers to this address thread too.
        mail["Reply-To"] = reply_to(message.from_address, message_id)
        if message.in_reply_to:
            references = [*(head.references if head is not None else ()), message.in_reply_to][-20:]
            mail["In-Reply-To"] = f"<{message.in_reply_to}>"
            mail["References"] = " ".join(f"<{r}>" for r in references)
        quoted = head if head is not None and self._quote_history and head.text.strip() else None
        mail.set_content(message.body + (_quoted_text(quoted) if quoted else ""))
        body = _html_paragraphs(message.body)
        if quoted:
            body += (
                f"<p>{html.escape(_attribution(quoted))}</p><blockquote>{_html_paragraphs(quoted.text)}</blockquote>"
            )
        mail.add_alternative(f"<!DOCTYPE html><html><body>{body}</body></html>", subtype="html")
        return mail

    async def _send_with_retries(self, mail: EmailMessage, message_id: str, in_reply_to: str) -> None:
        """Send, trying again what the relay refuses for now; a failure is an event (`mail.failed`) and an
        error the agent sees."""
        assert self._relay is not None
        pause = FIRST_PAUSE
        for attempt in range(1, self._tries + 1):
            try:
                await aiosmtplib.send(
                    mail,
                    hostname=self._relay.hostname,
                    port=self._relay.port or 25,
                    username=unquote(self._relay.username) if self._relay.username else None,
                    password=unquote(self._relay.password) if self._relay.password else None,
                    use_tls=self._relay.scheme == "smtps",
                    start_tls=None,
                    timeout=SEND_TIMEOUT,
                )
                return
            except aiosmtplib.SMTPResponseException as exc:
                if 500 <= exc.code < 600:
                    await self._mailbox.record_failure(
                        MailFailedV1(message_id=message_id, in_reply_to=in_reply_to, reason="refused", tries=attempt)
                    )
                    raise ReplyRefused(f"the mail relay refused the reply: {exc.code}", provider_id=message_id) from exc
                failure = f"the mail relay answered {exc.code}"
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                failure = f"the mail relay could not be reached ({type(exc).__name__})"
            log.warning("reply not sent (try %d of %d): %s", attempt, self._tries, failure)
            if attempt < self._tries:
                await asyncio.sleep(pause)
                pause *= 2
        await self._mailbox.record_failure(
            MailFailedV1(message_id=message_id, in_reply_to=in_reply_to, reason="unavailable", tries=self._tries)
        )
        raise ReplyNotTaken(f"{failure}; the reply was not sent, try again", provider_id=message_id)


# The customer's message quoted under a reply: at most this many characters of it.
MAX_QUOTED = 20_000


def _attribution(head: ThreadHead) -> str:
    return f"On {format_datetime(head.received_at)}, {head.author or 'you'} wrote:"


def _quoted_text(head: ThreadHead) -> str:
    lines = head.text[:MAX_QUOTED].rstrip("\n").split("\n")
    return "\n\n" + _attribution(head) + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines) + "\n"


def _html_paragraphs(text: str) -> str:
    paragraphs = (p.strip("\n") for p in text.split("\n\n"))
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs if p)
