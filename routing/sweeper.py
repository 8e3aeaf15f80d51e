"""Takes back offers nobody answered in time, so the work goes to the next agent. Every router sweeps;
each expiry is one atomic script, so sweeps running at once do not collide."""

from __future__ import annotations

from contactcenter.agents import AgentNoticesPort
from contactcenter.clock import now_ms
from contactcenter.live import LiveStatePort
from schema.offers import RevokeReason


class ReservationSweeper:
    def __init__(self, live: LiveStatePort, notices: AgentNoticesPort) -> None:
        self._live = live
        self._notices = notices

    async def sweep(self) -> None:
        changes = await self._live.expire_reservations(now_ms())
        await self._notices.announce(changes, revoked_because=RevokeReason.EXPIRED)
