"""Agents on the phone: a connected call occupies its agent on every channel until the call's final status —
or, should that status never come, until the longest call (`CC_VOICE_MAX_CALL_SECONDS`), when the routers'
sweep frees it. Freeing an agent matches it at once with waiting work, whose offers are announced here."""

from __future__ import annotations

import uuid

from contactcenter.agents import AgentNoticesPort
from contactcenter.clock import now_ms
from contactcenter.live.state import LiveState


class AgentCalls:
    def __init__(self, live: LiveState, notices: AgentNoticesPort, *, max_call_seconds: int) -> None:
        self._live = live
        self._notices = notices
        self._max_call_ms = max_call_seconds * 1000

    async def connected(self, agent_id: uuid.UUID, call_sid: str) -> None:
        now = now_ms()
        await self._live.occupy(agent_id, call_sid, now + self._max_call_ms, now)

    async def ended(self, call_sid: str) -> None:
        changes = await self._live.release(call_sid, now_ms())
        await self._notices.announce(changes)
