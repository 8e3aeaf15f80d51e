"""Whether any agent is there to answer a channel now: one of the agents of a queue serving it is available
with room for more work (live state). Read when a chat visitor connects, so the widget can say when nobody is
there and offer to leave a message; remembered a second, so a crowd of visitors costs one read a second."""

from __future__ import annotations

import time

import asyncpg

from contactcenter.live.state import LiveState
from schema import Channel
from schema.desktop import AgentState

AGENTS_SERVING = """
SELECT DISTINCT aq.agent_id FROM agent_queues aq JOIN queues q ON q.id = aq.queue_id WHERE $1 = ANY(q.channels)
"""
REMEMBERED_S = 1.0


class Staffing:
    def __init__(self, pool: asyncpg.Pool, live: LiveState) -> None:
        self._pool = pool
        self._live = live
        self._known: dict[Channel, tuple[float, bool]] = {}

    async def agents_available(self, channel: Channel) -> bool:
        known = self._known.get(channel)
        if known is not None and time.monotonic() - known[0] < REMEMBERED_S:
            return known[1]
        agent_ids = [row["agent_id"] for row in await self._pool.fetch(AGENTS_SERVING, str(channel))]
        statuses = await self._live.agent_statuses(agent_ids) if agent_ids else []
        available = any(status.state == AgentState.AVAILABLE and status.load < status.capacity for status in statuses)
        self._known[channel] = (time.monotonic(), available)
        return available
