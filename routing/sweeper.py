"""Takes back offers nobody answered in time, so the work goes to the next agent. Every router sweeps;
each expiry is one atomic script, so sweeps running at once do not collide."""

from __future__ import annotations

from contactcenter.agents.notices import AgentNotices
from contactcenter.live.state import LiveState
from routing.router import now_ms


class ReservationSweeper:
    def __init__(self, live: LiveState, notices: AgentNotices) -> None:
        self._live = live
        self._notices = notices

    async def sweep(self) -> None:
        await self._notices.announce(await self._live.expire_reservations(now_ms()))
