"""Takes back offers nobody answered in time, so the work goes to the next agent; ends wrap-ups whose time is up;
frees the agents of calls whose final status never came (`CC_VOICE_MAX_CALL_SECONDS`), each desktop told its call
ended. Every router sweeps; each expiry is one atomic script, so sweeps running at once do not collide."""

from __future__ import annotations

from datetime import UTC, datetime

from contactcenter.agents import CallNotices
from contactcenter.clock import now_ms
from contactcenter.live import LiveStatePort
from schema.offers import CallNotice, CallState, RevokeReason


class ReservationSweeper:
    def __init__(self, live: LiveStatePort, notices: CallNotices) -> None:
        self._live = live
        self._notices = notices

    async def sweep(self) -> None:
        now = now_ms()
        expired = await self._live.expire_reservations(now)
        # Told before the offers the freed agents were matched with, as a call's final status tells it.
        for freed in expired.calls_freed:
            since = freed.since_ms if freed.since_ms is not None else now
            await self._notices.call(
                CallNotice(
                    agent_id=freed.agent_id,
                    call_sid=freed.call_sid,
                    state=CallState.ENDED,
                    since=datetime.fromtimestamp(since / 1000, UTC),
                    duration_seconds=max(0, round((now - since) / 1000)),
                )
            )
        await self._notices.announce(expired, revoked_because=RevokeReason.EXPIRED)
