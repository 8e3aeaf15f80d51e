"""`GET /healthz` (the process runs) and `GET /readyz` (PostgreSQL, Redis and the bus all answer)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from contactcenter.app import Services

CHECK_TIMEOUT = 2.0


class Health:
    def __init__(self, services: Services) -> None:
        self._services = services

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz)]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        checks = await asyncio.gather(self._database(), self._redis(), self._services.bus.ping())
        report = dict(zip(("database", "redis", "bus"), checks, strict=True))
        status = 200 if all(checks) else 503
        return web.json_response({"ready": all(checks), "checks": report}, status=status)

    async def _database(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                return bool(await self._services.pool.fetchval("SELECT 1") == 1)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def _redis(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                return bool(await self._services.redis.ping())
        except (OSError, TimeoutError, RedisError):
            return False
