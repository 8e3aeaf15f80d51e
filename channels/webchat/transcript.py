"""Each visitor's transcript in PostgreSQL (migration 015): messages both ways, numbered without gaps, each kept
once by its sender's id for it. What the socket acknowledges is written here first."""

from __future__ import annotations

import json
import uuid
from typing import Literal

import asyncpg

from channels.webchat.frames import ChatEntry
from contactcenter.agents.outbound import Claims

APPEND = "SELECT o_seq, o_new, o_sent_at FROM cc_chat_append($1, $2, $3, $4)"
AFTER = """
SELECT seq, message_id, sender, body, sent_at FROM chat_messages
 WHERE visitor_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
"""
ENDED = "SELECT ended_at IS NOT NULL FROM chat_visitors WHERE visitor_id = $1"
END = "SELECT cc_chat_end($1)"
CLAIM = """
INSERT INTO chat_visitors (visitor_id, claims) VALUES ($1, $2::text::jsonb)
ON CONFLICT (visitor_id) DO UPDATE SET claims = chat_visitors.claims || EXCLUDED.claims
"""

CLAIMS = "SELECT claims::text, verified_email FROM chat_visitors WHERE visitor_id = $1"

# The most a welcome or a catch-up carries at once; a longer transcript comes in turns (`after`).
PAGE = 500

Sender = Literal["visitor", "agent"]


class Transcript:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(self, visitor_id: uuid.UUID, sender: Sender, message_id: str, text: str) -> tuple[ChatEntry, bool]:
        """The message as kept, and whether it is new (False: a retry, which keeps its first number)."""
        row = await self._pool.fetchrow(APPEND, visitor_id, sender, message_id, text)
        assert row is not None
        entry = ChatEntry(seq=row["o_seq"], id=message_id, from_=sender, text=text, sent_at=row["o_sent_at"])
        return entry, bool(row["o_new"])

    async def after(self, visitor_id: uuid.UUID, seq: int, limit: int = PAGE) -> list[ChatEntry]:
        rows = await self._pool.fetch(AFTER, visitor_id, seq, limit)
        return [
            ChatEntry(
                seq=row["seq"], id=row["message_id"], from_=row["sender"], text=row["body"], sent_at=row["sent_at"]
            )
            for row in rows
        ]

    async def ended(self, visitor_id: uuid.UUID) -> bool:
        return bool(await self._pool.fetchval(ENDED, visitor_id))

    async def end(self, visitor_id: uuid.UUID) -> bool:
        """Mark the chat ended (its event with it); False when there was no chat going on."""
        return bool(await self._pool.fetchval(END, visitor_id))

    async def claim(self, visitor_id: uuid.UUID, claims: Claims) -> Claims:
        """Keep what the visitor says (a field it leaves out keeps what it said before); answer all it said."""
        given = {key: value for key, value in vars(claims).items() if value is not None}
        await self._pool.execute(CLAIM, visitor_id, json.dumps(given))
        return await self.claims(visitor_id)

    async def claims(self, visitor_id: uuid.UUID) -> Claims:
        row = await self._pool.fetchrow(CLAIMS, visitor_id)
        kept = json.loads(row["claims"]) if row is not None else {}
        email = kept.get("email")
        verified = row is not None and email is not None and row["verified_email"] == email
        return Claims(name=kept.get("name"), email=email, phone=kept.get("phone"), email_verified=verified)
