"""`GET /metrics`: the app's registry in Prometheus' text format, with what live state and the services say
now read first — in one round trip to PostgreSQL and one to Redis each, bounded by a timeout, so a slow
Redis makes a scrape say so (`cc_live_state_read 0`) rather than hang.

Open by default, as metrics conventionally are on an internal port; our port also faces Twilio, so
`CC_METRICS_TOKEN`, when set, asks for `Authorization: Bearer <token>` (Prometheus' `authorization` setting).
The output holds counts and queue names only: no ids, numbers or customers' words.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from contactcenter.api.operations import Answer, Operation, failures
from contactcenter.auth import bearer_token
from contactcenter.errors import Unauthorized, Unavailable
from contactcenter.host.services import Services
from contactcenter.metrics import LiveMetrics, Metrics
from contactcenter.store.directory import token_bytes

log = logging.getLogger(__name__)

READ_TIMEOUT = 2.0

SCRAPE = Operation(
    "GET",
    "/metrics",
    "scrapeMetrics",
    "Prometheus metrics in the text exposition format (bearer CC_METRICS_TOKEN when it is set)",
    {
        200: Answer("the metrics", media_type=CONTENT_TYPE_LATEST.split(";")[0], schema={"type": "string"}),
        **failures(401, reasons={401: "CC_METRICS_TOKEN is set and the bearer token is missing or wrong"}),
    },
)


class MetricsEndpoint:
    OPERATIONS = (SCRAPE,)

    def __init__(self, metrics: Metrics, services: Services, token: str | None) -> None:
        self._metrics = metrics
        self._services = services
        self._token = token

    def routes(self) -> list[web.RouteDef]:
        return [SCRAPE.route(self.scrape)]

    async def scrape(self, request: web.Request) -> web.Response:
        self._check_token(request)
        await self._read_live(self._metrics.live)
        return web.Response(body=generate_latest(self._metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _check_token(self, request: web.Request) -> None:
        if self._token is None:
            return
        # Compared as bytes, as every token is: a header may hold any code point.
        if not secrets.compare_digest(token_bytes(bearer_token(request)), token_bytes(self._token)):
            raise Unauthorized("the metrics need the bearer token set in CC_METRICS_TOKEN", field="Authorization")

    async def _read_live(self, live: LiveMetrics) -> None:
        pool = self._services.pool
        live.pool_size.set(pool.get_size())
        live.pool_idle.set(pool.get_idle_size())
        live.pool_max.set(pool.get_max_size())
        bus_up, live_read, _ = await asyncio.gather(
            self._services.bus.ping(), self._read_live_state(live), self._read_dead_letters(live)
        )
        live.bus_up.set(int(bus_up))
        live.live_state_read.set(int(live_read))

    async def _read_dead_letters(self, live: LiveMetrics) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                waiting = await self._services.bus.waiting(self._services.topology.dead_letter_queue)
        except (Unavailable, TimeoutError) as exc:
            log.warning("metrics: the dead letters could not be counted (%s)", type(exc).__name__)
            live.dead_letters.set(float("nan"))
            return
        live.dead_letters.set(waiting)

    async def _read_live_state(self, live: LiveMetrics) -> bool:
        """Waiting work per queue and agents by state; on failure the gauges are left empty, not stale."""
        live.waiting.clear()
        live.agents.clear()
        services = self._services
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                queues, agent_ids = await asyncio.gather(services.directory.queues(), services.directory.agent_ids())
                lengths = await services.live.queue_lengths(list(queues))
                statuses = await services.live.agent_statuses(agent_ids)
        except (OSError, TimeoutError, RedisError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("metrics: live state could not be read (%s)", type(exc).__name__)
            live.redis_up.set(0)
            return False
        live.redis_up.set(1)
        for name, length in zip(queues.values(), lengths, strict=True):
            live.waiting.labels(name).set(length)
        for state, count in Counter(status.state for status in statuses).items():
            live.agents.labels(state).set(count)
        return True
