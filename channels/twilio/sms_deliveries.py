"""What Twilio reported of an agent's SMS reply after it left (migration 040): stored as it arrives, told once as
`message.delivered` or `message.undelivered` when the reply it names is stored too."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# The first final report of a message is kept: Twilio repeats its callbacks.
_RECORD = """
INSERT INTO message_deliveries (channel, provider_id, status, error_code) VALUES ('sms', $1, $2, $3)
ON CONFLICT (channel, provider_id) DO NOTHING
"""
# The report and the reply it names, told in one statement: `told_at` is set once, so the event is written once
# (a repeat waits on the row's lock, then finds it told). `settled` is the state before this statement: told by an
# earlier one.
_TELL = """
WITH told AS (
    UPDATE message_deliveries d SET told_at = now()
    FROM interactions x
    WHERE d.channel = 'sms' AND d.provider_id = $1 AND d.told_at IS NULL
      AND x.channel = 'sms' AND x.direction = 'outbound' AND x.provider_id = $1
    RETURNING d.status, d.error_code, d.reported_at, x.id, x.conversation_id, x.client_id, x.channel
), written AS (
    INSERT INTO events (type, subject, partition_key, data)
    SELECT CASE t.status WHEN 'delivered' THEN 'message.delivered' ELSE 'message.undelivered' END,
           t.id, 'conversation:' || t.conversation_id,
           jsonb_build_object('interaction_id', t.id, 'conversation_id', t.conversation_id,
                              'client_id', t.client_id, 'channel', t.channel)
           || CASE t.status
                  WHEN 'delivered' THEN jsonb_build_object('delivered_at', t.reported_at)
                  ELSE jsonb_build_object('status', t.status, 'error_code', nullif(t.error_code, ''),
                                          'reported_at', t.reported_at)
              END
    FROM told t
    RETURNING 1
)
SELECT EXISTS (SELECT FROM written) AS told,
       EXISTS (SELECT FROM message_deliveries
               WHERE channel = 'sms' AND provider_id = $1 AND told_at IS NOT NULL) AS settled
"""


class SmsDeliveries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def report(self, message_sid: str, status: str, error_code: str) -> bool:
        """Keep Twilio's final report of a message; tell it if its reply is stored. False: not told yet."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_RECORD, message_sid, status, error_code)
            return await self._tell(conn, message_sid)

    async def tell(self, message_sid: str) -> bool:
        """Tell a report kept before its reply was stored, if the reply is stored now. False: not yet."""
        async with self._pool.acquire() as conn:
            return await self._tell(conn, message_sid)

    @staticmethod
    async def _tell(conn: PoolConnectionProxy, message_sid: str) -> bool:
        row = await conn.fetchrow(_TELL, message_sid)
        assert row is not None
        return bool(row["told"] or row["settled"])
