"""Calls that occupy their agents, kept in PostgreSQL (migration 024) beside live state's own record of them, so
that a rebuild of live state after Redis lost it keeps every agent on a call off every channel until the call
ends. Written before live state is told of a call and deleted before its end is (`agents.calls.AgentCalls`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from contactcenter.store import OccupyingCall

# The agent is on this call now: a call it was on before frees it no more (live state's own rule, occupy.lua).
OCCUPY = """
WITH older AS (
    DELETE FROM agent_calls WHERE agent_id = $2 AND call_sid <> $1
)
INSERT INTO agent_calls (call_sid, agent_id, until) VALUES ($1, $2, $3)
ON CONFLICT (call_sid) DO UPDATE SET agent_id = $2, until = $3
"""
# The call ended; rows of calls whose end never came go too once past their bound (a bounded batch, skipping
# rows another end deletes). Answers the agent the call occupied, when it was in progress (within its bound).
END = """
WITH gone AS (
    DELETE FROM agent_calls WHERE call_sid = ANY (array_append(ARRAY(
        SELECT call_sid FROM agent_calls WHERE until < now() ORDER BY until LIMIT 100 FOR UPDATE SKIP LOCKED), $1))
    RETURNING call_sid, agent_id, until
)
SELECT agent_id FROM gone WHERE call_sid = $1 AND until > now()
"""
# The end of a call live state had lost (Redis lost it, not rebuilt yet): the event live state would have written
# (release.lua's agent.call_ended), so that the wallboard shows the agent off the call.
LOST_CALL_ENDED = """
INSERT INTO events (type, subject, partition_key, data)
VALUES ('agent.call_ended', $1::text, 'agent:' || $1::text,
        jsonb_build_object('agent_id', $1::text, 'call_sid', $2::text))
"""
# Past its bound a call frees its agent in live state (the sweep): such a row is no call in progress.
IN_PROGRESS = """
SELECT call_sid, agent_id, (extract(epoch FROM until) * 1000)::bigint AS until_ms
FROM agent_calls WHERE until > now() ORDER BY until
"""
STILL_ON = "SELECT call_sid FROM agent_calls WHERE call_sid = ANY ($1::text[])"


class CallOccupations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def occupy(self, call_sid: str, agent_id: uuid.UUID, until_ms: int) -> None:
        await self._pool.execute(OCCUPY, call_sid, agent_id, datetime.fromtimestamp(until_ms / 1000, UTC))

    async def end(self, call_sid: str) -> uuid.UUID | None:
        """The call ended: the agent it occupied, when it was in progress."""
        agent: uuid.UUID | None = await self._pool.fetchval(END, call_sid)
        return agent

    async def lost_call_ended(self, call_sid: str, agent_id: uuid.UUID) -> None:
        await self._pool.execute(LOST_CALL_ENDED, str(agent_id), call_sid)

    async def in_progress(self) -> list[OccupyingCall]:
        rows = await self._pool.fetch(IN_PROGRESS)
        return [OccupyingCall(row["call_sid"], row["agent_id"], row["until_ms"]) for row in rows]

    async def still_on(self, call_sids: list[str]) -> set[str]:
        rows = await self._pool.fetch(STILL_ON, call_sids)
        return {row["call_sid"] for row in rows}
