"""Proving a chat visitor's claimed email: a six-digit code sent to the address (through a small port: the
service's outbound mail relay, `CC_SMTP_RELAY_URL`), good for ten minutes and five tries; the code is kept as its
SHA-256 only. A proved address resolves like any verified identity (`ProvedIdentityPort`: on the visitor's card,
merging it with a card that holds the address verified)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from typing import Protocol
from urllib.parse import urlsplit

import aiosmtplib
import asyncpg

from channels import ProvedIdentityPort
from contactcenter.errors import Conflict, Invalid, Unavailable
from schema import IdentityKind

CODE_LIFETIME = timedelta(minutes=10)
TRIES = 5
RESEND_AFTER = timedelta(minutes=1)
SEND_TIMEOUT_S = 10.0

# Takes a new code for the claimed email, unless one was sent within the last minute; answers the address.
NEW_CODE = """
UPDATE chat_visitors
   SET email_code_hash = $2, email_code_until = now() + $3::interval, email_code_tries = $4, email_code_sent = now()
 WHERE visitor_id = $1 AND claims ? 'email'
   AND (email_code_sent IS NULL OR email_code_sent < now() - $5::interval)
RETURNING claims->>'email'
"""
CLAIMED_EMAIL = "SELECT claims->>'email' FROM chat_visitors WHERE visitor_id = $1"
# One try spent; answers the code's hash while it holds and tries were left.
SPEND_TRY = """
UPDATE chat_visitors SET email_code_tries = email_code_tries - 1
 WHERE visitor_id = $1 AND email_code_hash IS NOT NULL AND email_code_until > now() AND email_code_tries > 0
RETURNING email_code_hash, claims->>'email' AS email
"""
PROVED = """
UPDATE chat_visitors SET verified_email = $2, email_code_hash = NULL, email_code_until = NULL
 WHERE visitor_id = $1
"""
VERIFIED = "SELECT verified_email FROM chat_visitors WHERE visitor_id = $1"


class CodeMailer(Protocol):
    """Sends a visitor its code. Raises `Unavailable` when the mail cannot leave."""

    async def send_code(self, to_address: str, code: str) -> None: ...


class SmtpCodeMailer:
    """Through the relay of `CC_SMTP_RELAY_URL` (`smtp://host:port`)."""

    def __init__(self, relay_url: str, sender: str) -> None:
        parts = urlsplit(relay_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 25
        self._sender = sender

    async def send_code(self, to_address: str, code: str) -> None:
        message = EmailMessage(policy=default)
        message["From"] = self._sender
        message["To"] = to_address
        message["Subject"] = "Your chat code"
        message.set_content(
            f"Your code is {code}. It is good for ten minutes. If you did not ask for it, ignore this mail."
        )
        try:
            await aiosmtplib.send(message, hostname=self._host, port=self._port, timeout=SEND_TIMEOUT_S)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise Unavailable(f"the mail relay did not take the code: {type(exc).__name__}") from exc


class NoMailer:
    async def send_code(self, to_address: str, code: str) -> None:
        raise Unavailable("no mail relay is configured (CC_SMTP_RELAY_URL): emails cannot be verified")


def _hashed(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


class EmailProof:
    def __init__(self, pool: asyncpg.Pool, mailer: CodeMailer, identities: ProvedIdentityPort) -> None:
        self._pool = pool
        self._mailer = mailer
        self._identities = identities

    async def send_code(self, visitor_id: uuid.UUID) -> str:
        """Send a new code to the email the visitor claims; answer the address."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        email = await self._pool.fetchval(NEW_CODE, visitor_id, _hashed(code), CODE_LIFETIME, TRIES, RESEND_AFTER)
        if email is None:
            if await self._pool.fetchval(CLAIMED_EMAIL, visitor_id) is None:
                raise Invalid("say which email is yours first (identify)", field="email")
            raise Conflict("a code was sent less than a minute ago", field="type")
        await self._mailer.send_code(email, code)
        return str(email)

    async def prove(self, visitor_id: uuid.UUID, code: str) -> str:
        """The claimed email, proved by `code`, now on the visitor's card; `Invalid` naming `code` otherwise (a try
        spent). The code is spent once the email is on the card: if that fails, the same code may be tried again."""
        row = await self._pool.fetchrow(SPEND_TRY, visitor_id)
        if row is None:
            raise Invalid("no code is waiting: ask for a new one", field="code")
        if not hmac.compare_digest(row["email_code_hash"], _hashed(code)):
            raise Invalid("this is not the code we sent", field="code")
        await self._identities.proved(IdentityKind.VISITOR, str(visitor_id), IdentityKind.EMAIL, row["email"])
        await self._pool.execute(PROVED, visitor_id, row["email"])
        return str(row["email"])

    async def verified(self, visitor_id: uuid.UUID) -> str | None:
        found = await self._pool.fetchval(VERIFIED, visitor_id)
        return str(found) if found is not None else None
