"""Takes back offers nobody answered in time, so the work goes to the next agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from redis.exceptions import RedisError

from contactcenter.agents.notices import AgentNotices
from contactcenter.errors import ContactCenterError
from contactcenter.live.state import LiveState
from routing.router import now_ms

log = logging.getLogger(__name__)


class ReservationSweeper:
    """Runs in every router; several may sweep at once, since each expiry is one atomic script.

    Stopped with an event rather than by cancelling: a cancellation landing inside a Redis call can come
    out as a connection error, which the loop would take for a passing failure and carry on.
    """

    def __init__(self, live: LiveState, notices: AgentNotices, *, every_seconds: float = 1.0) -> None:
        self._live = live
        self._notices = notices
        self._every_seconds = every_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reservation-sweeper")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                changes = await self._live.expire_reservations(now_ms())
                await self._notices.announce(changes)
            except (ContactCenterError, OSError, RedisError, asyncpg.PostgresError) as exc:
                log.warning("reservation sweep failed, trying again: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every_seconds)
