"""Agents on the phone: a connected call occupies its agent on every channel until the call's final status —
or, should that status never come, until the longest call (`CC_VOICE_MAX_CALL_SECONDS`), when the routers'
sweep frees it. Freeing an agent matches it at once with waiting work, whose offers are announced here. The
agent's desktop is told the call's state (`CallNotice`): in progress from its connection, ended at its end.

PostgreSQL keeps the calls that occupy agents (`store.calls`) for live state's rebuild after Redis lost it: each
call is written there before live state occupies the agent, and deleted before live state frees it, so a rebuild
that reads it and then occupies finds any end that came meanwhile (`routing.recovery`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contactcenter.agents import CallNotices
from contactcenter.clock import now_ms
from contactcenter.live.state import LiveState
from contactcenter.store.calls import CallOccupations
from schema.offers import CallNotice, CallState


class AgentCalls:
    def __init__(
        self, live: LiveState, occupations: CallOccupations, notices: CallNotices, *, max_call_seconds: int
    ) -> None:
        self._live = live
        self._occupations = occupations
        self._notices = notices
        self._max_call_ms = max_call_seconds * 1000

    async def connected(self, agent_id: uuid.UUID, call_sid: str) -> None:
        now = now_ms()
        until = now + self._max_call_ms
        await self._occupations.occupy(call_sid, agent_id, until)
        if await self._live.occupy(agent_id, call_sid, until, now):
            await self._notices.call(
                CallNotice(
                    agent_id=agent_id,
                    call_sid=call_sid,
                    state=CallState.IN_PROGRESS,
                    since=_at(now),
                    duration_seconds=None,
                )
            )

    async def ended(self, call_sid: str) -> None:
        now = now_ms()
        occupied = await self._occupations.end(call_sid)
        released = await self._live.release(call_sid, now)
        if released.agent_id is None and occupied is not None:
            # PostgreSQL had the call in progress and live state did not: Redis lost it (and the rebuild, which
            # would have put it back, has not run). The agent is free; the wallboard is told so from here.
            await self._occupations.lost_call_ended(call_sid, occupied)
        if released.agent_id is not None and released.since_ms is not None:
            # Told before the offers its end set in motion, so the desktop shows the call over first.
            await self._notices.call(
                CallNotice(
                    agent_id=released.agent_id,
                    call_sid=call_sid,
                    state=CallState.ENDED,
                    since=_at(released.since_ms),
                    duration_seconds=max(0, round((now - released.since_ms) / 1000)),
                )
            )
        await self._notices.announce(released)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
