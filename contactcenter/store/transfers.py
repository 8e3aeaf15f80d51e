"""An agent hands a conversation it accepted to a queue: whether it may (`check`), and the hand-over in
PostgreSQL with its `conversation.transferred` event (`record`). Live state moves the work in between
(`LiveState.transfer`), so a failure here leaves the work where live state put it: routed anew, the new agent's
accept gives it the conversation (`Conversations.assign`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from contactcenter.errors import Invalid, NotFound
from schema import Channel

_CHECK = """
SELECT v.channel, q.id AS queue_id, v.channel = ANY(q.channels) AS serves
FROM conversations v LEFT JOIN queues q ON q.name = $3
WHERE v.id = $1 AND v.agent_id = $2 AND v.state = 'open'
"""
# Nobody holds it until an agent of the queue accepts it; the event in the same statement. `old` is the row as
# it was (the FROM list reads the snapshot the UPDATE started from).
_RECORD = """
WITH changed AS (
    UPDATE conversations v SET agent_id = NULL, queue_id = $3
    FROM conversations old
    WHERE v.id = $1 AND old.id = v.id AND v.agent_id = $2 AND v.state = 'open'
    RETURNING v.id, v.client_id, v.channel, old.queue_id AS previous_queue_id
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'conversation.transferred', c.id, 'conversation:' || c.id,
       jsonb_build_object('conversation_id', c.id, 'client_id', c.client_id, 'channel', c.channel,
                          'from_agent_id', $2::uuid, 'queue_id', $3::uuid, 'previous_queue_id', c.previous_queue_id)
FROM changed c
RETURNING 1
"""


@dataclass(frozen=True)
class Handoff:
    channel: Channel
    queue_id: uuid.UUID


class ConversationTransfers:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def check(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, queue_name: str) -> Handoff:
        """The conversation's channel and the queue's id; NotFound when the agent does not hold the conversation,
        Invalid naming `queue` when no such queue takes the channel."""
        row = await self._pool.fetchrow(_CHECK, conversation_id, agent_id, queue_name)
        if row is None:
            raise NotFound(f"conversation {conversation_id} is not open and assigned to you", field="conversation_id")
        channel = Channel(row["channel"])
        if row["queue_id"] is None:
            raise Invalid(f"no queue named {queue_name!r}", field="queue")
        if not row["serves"]:
            raise Invalid(f"the queue {queue_name!r} does not take {channel} conversations", field="queue")
        return Handoff(channel, row["queue_id"])

    async def record(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, queue_id: uuid.UUID) -> bool:
        """The conversation is nobody's, in the queue; False when it was no longer the agent's (nothing written)."""
        return await self._pool.fetchval(_RECORD, conversation_id, agent_id, queue_id) is not None
