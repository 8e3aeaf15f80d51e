"""What the channel keeps of a mail beyond its interaction, behind a port (`MailStore`): subject, bodies,
the ids it threads by, attachments, the raw bytes of one that could not be parsed. PostgreSQL first
(`PostgresMailStore`, migration 014)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from channels.email.parsing import ParsedMail
from contactcenter.errors import NotFound
from schema.events import EventData, MailFailedV1


@dataclass(frozen=True)
class ThreadHead:
    """What a reply to a stored message needs: its subject, the ids it threads by, and what it said, by whom
    and when (for the quoted history)."""

    message_id: str
    subject: str
    references: tuple[str, ...]
    text: str
    author: str
    received_at: datetime


@dataclass(frozen=True)
class StoredAttachment:
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    content: bytes | None  # None: past the size kept


class MailStore(Protocol):
    async def keep(
        self,
        mail: ParsedMail,
        *,
        direction: str,
        client_address: str,
        raw: bytes | None,
        max_attachment: int,
        event: EventData,
    ) -> list[uuid.UUID]:
        """Store the mail once (its Message-ID decides; a retry changes nothing), with its event (`mail.received`
        or `mail.sent`) in the same transaction. Returns its attachments' ids, in the mail's order: random (no
        one derives them from what the mail says), and on a retry the ids the first try stored."""

    async def record_failure(self, failure: MailFailedV1) -> None:
        """Write `mail.failed` (a reply the relay did not take)."""

    async def imap_cursor(self, mailbox: str) -> tuple[int, int] | None:
        """The mailbox's UIDVALIDITY and the last UID taken in, or None before the first."""

    async def advance_imap_cursor(self, mailbox: str, uidvalidity: int, uid: int) -> None:
        """Record that the message `uid` of the mailbox was taken in."""

    async def thread_owner(self, message_ids: Sequence[str]) -> str | None:
        """The customer's address of the first of these stored messages (None when none is ours)."""

    async def thread_head(self, message_id: str) -> ThreadHead | None: ...

    async def conversation_open(self, client_address: str) -> bool:
        """Whether the customer with this email address has an open email conversation (what an automated mail
        filed under them would join)."""

    async def attachment(self, attachment_id: uuid.UUID, agent_id: uuid.UUID | None) -> StoredAttachment:
        """The attachment, for the admin (`agent_id` None) or the agent the conversation its mail is in is
        assigned to (now, or when it closed); `NotFound` for anyone else, as for no such attachment."""


INSERT_MESSAGE = """
INSERT INTO email_messages (message_id, direction, subject, text_body, html_body, in_reply_to, refs, parsed, raw,
                            client_address)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (message_id) DO NOTHING
"""
INSERT_ATTACHMENTS = """
INSERT INTO email_attachments (id, message_id, position, filename, content_type, size, content)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])
"""
# A mail's event, written to the outbox (migration 010) in the transaction that stores the mail.
INSERT_EVENT = """
INSERT INTO events (type, subject, partition_key, data) VALUES ($1, $2, 'mail:' || $2, $3::text::jsonb)
"""
THREAD_OWNER = """
SELECT m.client_address
FROM unnest($1::text[]) WITH ORDINALITY AS r(message_id, n)
JOIN email_messages m ON m.message_id = r.message_id
WHERE m.client_address <> ''
ORDER BY r.n
LIMIT 1
"""
# As the routers' recording (`cc_record_inbound`) finds the conversation a mail joins: the identity's client.
CONVERSATION_OPEN = """
SELECT EXISTS (
    SELECT 1 FROM identities i JOIN conversations v ON v.client_id = i.client_id
    WHERE i.kind = 'email' AND i.value = $1 AND v.channel = 'email' AND v.state = 'open')
"""
IMAP_CURSOR = "SELECT uidvalidity, last_uid FROM email_imap_cursors WHERE mailbox = $1"
ADVANCE_IMAP_CURSOR = """
INSERT INTO email_imap_cursors (mailbox, uidvalidity, last_uid) VALUES ($1, $2, $3)
ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid
"""
THREAD_HEAD = """
SELECT message_id, subject, refs, text_body, client_address, created_at FROM email_messages WHERE message_id = $1
"""
ATTACHMENT_IDS = "SELECT id FROM email_attachments WHERE message_id = $1 ORDER BY position"
# The admin ($2 NULL) or the agent of the conversation the mail's interaction is in.
ATTACHMENT = """
SELECT a.id, a.filename, a.content_type, a.size, a.content
FROM email_attachments a
WHERE a.id = $1
  AND ($2::uuid IS NULL OR EXISTS (
      SELECT 1 FROM interactions x JOIN conversations v ON v.id = x.conversation_id
      WHERE x.channel = 'email' AND x.direction = 'inbound' AND x.provider_id = a.message_id AND v.agent_id = $2))
"""


class PostgresMailStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def keep(
        self,
        mail: ParsedMail,
        *,
        direction: str,
        client_address: str,
        raw: bytes | None,
        max_attachment: int,
        event: EventData,
    ) -> list[uuid.UUID]:
        kept = list(mail.attachments)
        ids = [uuid.uuid4() for _ in kept]
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                INSERT_MESSAGE,
                mail.message_id,
                direction,
                mail.subject,
                mail.text,
                mail.html,
                mail.in_reply_to or mail.bounced_message_id,
                list(mail.references),
                mail.parsed,
                raw,
                client_address,
            )
            if status.endswith(" 0"):  # stored before: an SMTP retry
                return [row["id"] for row in await conn.fetch(ATTACHMENT_IDS, mail.message_id)]
            kind = "mail.received" if direction == "inbound" else "mail.sent"
            await conn.execute(INSERT_EVENT, kind, mail.message_id, event.model_dump_json())
            if not kept:
                return []
            await conn.execute(
                INSERT_ATTACHMENTS,
                ids,
                [mail.message_id] * len(kept),
                list(range(len(kept))),
                [a.filename for a in kept],
                [a.content_type for a in kept],
                [len(a.content) for a in kept],
                [a.content if len(a.content) <= max_attachment else None for a in kept],
            )
        return ids

    async def record_failure(self, failure: MailFailedV1) -> None:
        await self._pool.execute(INSERT_EVENT, "mail.failed", failure.message_id, failure.model_dump_json())

    async def imap_cursor(self, mailbox: str) -> tuple[int, int] | None:
        row = await self._pool.fetchrow(IMAP_CURSOR, mailbox)
        return None if row is None else (row["uidvalidity"], row["last_uid"])

    async def advance_imap_cursor(self, mailbox: str, uidvalidity: int, uid: int) -> None:
        await self._pool.execute(ADVANCE_IMAP_CURSOR, mailbox, uidvalidity, uid)

    async def thread_owner(self, message_ids: Sequence[str]) -> str | None:
        if not message_ids:
            return None
        owner: str | None = await self._pool.fetchval(THREAD_OWNER, list(message_ids))
        return owner

    async def thread_head(self, message_id: str) -> ThreadHead | None:
        row = await self._pool.fetchrow(THREAD_HEAD, message_id)
        if row is None:
            return None
        return ThreadHead(
            row["message_id"],
            row["subject"],
            tuple(row["refs"]),
            row["text_body"],
            row["client_address"],
            row["created_at"],
        )

    async def conversation_open(self, client_address: str) -> bool:
        return bool(await self._pool.fetchval(CONVERSATION_OPEN, client_address))

    async def attachment(self, attachment_id: uuid.UUID, agent_id: uuid.UUID | None) -> StoredAttachment:
        row = await self._pool.fetchrow(ATTACHMENT, attachment_id, agent_id)
        if row is None:
            raise NotFound(f"no attachment {attachment_id}", field="attachment_id")
        return StoredAttachment(row["id"], row["filename"], row["content_type"], row["size"], row["content"])
