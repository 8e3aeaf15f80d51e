"""`GET /healthz` (the process runs) and `GET /readyz` (PostgreSQL, Redis and the bus all answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from contactcenter.api.operations import Answer, Operation
from contactcenter.bus import Bus
from schema import Liveness, Readiness, ReadinessChecks

CHECK_TIMEOUT = 2.0

HEALTHZ = Operation(
    "GET", "/healthz", "healthz", "Whether the process runs (every role)", {200: Answer("it runs", Liveness)}
)
READYZ = Operation(
    "GET",
    "/readyz",
    "readyz",
    "Whether PostgreSQL, Redis and the bus all answer",
    {200: Answer("all answer", Readiness), 503: Answer("one does not: `checks` says which", Readiness)},
)


class Health:
    OPERATIONS = (HEALTHZ, READYZ)

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, bus: Bus) -> None:
        self._pool = pool
        self._redis_client = redis
        self._bus = bus

    def routes(self) -> list[web.RouteDef]:
        return [HEALTHZ.route(self.healthz), READYZ.route(self.readyz)]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response(Liveness().model_dump())

    async def readyz(self, request: web.Request) -> web.Response:
        database, redis, bus = await asyncio.gather(self._database(), self._redis(), self._bus.ping())
        report = Readiness(
            ready=database and redis and bus, checks=ReadinessChecks(database=database, redis=redis, bus=bus)
        )
        return web.json_response(report.model_dump(), status=200 if report.ready else 503)

    async def _database(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                return bool(await self._pool.fetchval("SELECT 1") == 1)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def _redis(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                # Cast: redis-py 7 and 8 type the asyncio client's replies differently.
                return bool(await cast("Awaitable[Any]", self._redis_client.ping()))
        except (OSError, TimeoutError, RedisError):
            return False
