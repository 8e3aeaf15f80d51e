"""Agents on the phone: a connected call occupies its agent on every channel until the call's final status —
or, should that status never come, until the longest call (`CC_VOICE_MAX_CALL_SECONDS`), when the routers'
sweep frees it. Freeing an agent matches it at once with waiting work, whose offers are announced here.

PostgreSQL keeps the calls that occupy agents (`store.calls`) for live state's rebuild after Redis lost it: each
call is written there before live state occupies the agent, and deleted before live state frees it, so a rebuild
that reads it and then occupies finds any end that came meanwhile (`routing.recovery`)."""

from __future__ import annotations

import uuid

from contactcenter.agents import AgentNoticesPort
from contactcenter.clock import now_ms
from contactcenter.live.state import LiveState
from contactcenter.store.calls import CallOccupations


class AgentCalls:
    def __init__(
        self, live: LiveState, occupations: CallOccupations, notices: AgentNoticesPort, *, max_call_seconds: int
    ) -> None:
        self._live = live
        self._occupations = occupations
        self._notices = notices
        self._max_call_ms = max_call_seconds * 1000

    async def connected(self, agent_id: uuid.UUID, call_sid: str) -> None:
        now = now_ms()
        until = now + self._max_call_ms
        await self._occupations.occupy(call_sid, agent_id, until)
        await self._live.occupy(agent_id, call_sid, until, now)

    async def ended(self, call_sid: str) -> None:
        await self._occupations.end(call_sid)
        changes = await self._live.release(call_sid, now_ms())
        await self._notices.announce(changes)
