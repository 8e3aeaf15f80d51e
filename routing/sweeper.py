"""Takes back offers nobody answered in time, so the work goes to the next agent."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from redis.exceptions import RedisError

from contactcenter.agents.notices import AgentNotices
from contactcenter.errors import ContactCenterError
from contactcenter.live.state import LiveState
from routing.router import now_ms

log = logging.getLogger(__name__)


async def sweep_expired_reservations(live: LiveState, notices: AgentNotices, *, every_seconds: float = 1.0) -> None:
    """Runs until cancelled. Several routers may sweep at once: each expiry is one atomic script."""
    while True:
        try:
            changes = await live.expire_reservations(now_ms())
            await notices.announce(changes)
        except (ContactCenterError, OSError, RedisError, asyncpg.PostgresError) as exc:
            log.warning("reservation sweep failed, trying again: %s", exc)
        await asyncio.sleep(every_seconds)
