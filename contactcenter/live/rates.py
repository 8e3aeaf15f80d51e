"""Rate limits that hold across processes: one token bucket per sender in Redis (`scripts/rate.lua`), so a
sender that spreads its frames over several API processes, or reconnects to another, still gets one rate."""

from __future__ import annotations

from asyncio import timeout as asyncio_timeout
from importlib import resources

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from contactcenter.errors import Unavailable


class RedisRate:
    """The buckets of one audience (`<namespace>:rate:<audience>:<sender>`)."""

    def __init__(
        self, redis: aioredis.Redis, *, namespace: str, audience: str, per_minute: int, burst: int, timeout: float
    ) -> None:
        source = (resources.files("contactcenter.live") / "scripts" / "rate.lua").read_text("utf-8")
        self._script = redis.register_script(source)
        self._prefix = f"{namespace}:rate:{audience}:"
        self._per_second = per_minute / 60.0
        self._burst = burst
        self._timeout = timeout

    async def take(self, sender: str) -> bool:
        """One frame more from `sender`: False when it is over its rate. `Unavailable` when Redis is not there."""
        try:
            async with asyncio_timeout(self._timeout):
                taken = await self._script(keys=[self._prefix + sender], args=[self._per_second, self._burst])
        except (RedisError, OSError, TimeoutError) as exc:
            raise Unavailable(f"the rate limit could not be checked: {type(exc).__name__}") from exc
        return bool(taken)
