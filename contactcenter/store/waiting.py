"""Contacts that leave before any agent took them (a caller who hangs up while waiting): found by the
provider's id, their conversation closed unanswered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from schema import Channel

# The open conversation an inbound contact waits in (the provider's id is unique per channel and direction).
WAITING_CONTACT = """
SELECT x.id AS interaction_id, x.conversation_id, v.queue_id
FROM interactions x JOIN conversations v ON v.id = x.conversation_id
WHERE x.channel = $1 AND x.direction = 'inbound' AND x.provider_id = $2 AND v.state = 'open'
"""
# Closed only while no agent holds it: an agent who accepted it meanwhile keeps it. Its conversation.closed
# (no agent; the reason `abandoned` or `withdrawn`) is written in the same statement, so the event stream holds
# every conversation the database closed; the channel writes what ended the contact itself (call.abandoned).
CLOSE_UNANSWERED = """
WITH changed AS (
    UPDATE conversations SET state = 'closed', closed_at = now()
    WHERE id = $1 AND state = 'open' AND agent_id IS NULL
    RETURNING id, client_id, channel, closed_at
), closed AS (
    INSERT INTO events (type, subject, partition_key, data)
    SELECT 'conversation.closed', c.id, 'conversation:' || c.id,
           jsonb_build_object('conversation_id', c.id, 'client_id', c.client_id, 'channel', c.channel,
                              'agent_id', NULL, 'closed_at', c.closed_at, 'reason', $2::text)
    FROM changed c
)
SELECT id FROM changed
"""


@dataclass(frozen=True)
class WaitingContact:
    interaction_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID | None


class WaitingContacts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find(self, channel: Channel, provider_id: str) -> WaitingContact | None:
        row = await self._pool.fetchrow(WAITING_CONTACT, channel.value, provider_id)
        if row is None:
            return None
        return WaitingContact(row["interaction_id"], row["conversation_id"], row["queue_id"])

    async def close_unanswered(self, conversation_id: uuid.UUID, *, abandoned: bool) -> bool:
        """Close the conversation nobody took (`abandoned`: the customer gave up; else it left for other work);
        False when an agent holds it or it was closed already."""
        reason = "abandoned" if abandoned else "withdrawn"
        return await self._pool.fetchval(CLOSE_UNANSWERED, conversation_id, reason) is not None
