"""Opens the service's adapters — embedded or production, as the settings say — and the repositories on top of
them, in one exit stack closed in reverse: the one place that knows which adapter runs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from contactcenter.agents.notices import AgentNotices
from contactcenter.agents.relay import NoticeRelay
from contactcenter.bus import Bus
from contactcenter.bus.interactions import Topology
from contactcenter.live.state import LiveState
from contactcenter.settings import Settings
from contactcenter.store import open_pool
from contactcenter.store.cards import Cards
from contactcenter.store.conversations import Conversations
from contactcenter.store.directory import Directory
from contactcenter.store.migrate import migrate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """The opened adapters and the repositories on top of them."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    bus: Bus
    topology: Topology
    live: LiveState
    relay: NoticeRelay
    directory: Directory
    cards: Cards
    conversations: Conversations
    notices: AgentNotices
    http: aiohttp.ClientSession


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    async with contextlib.AsyncExitStack() as stack:
        pool = await _open_database(settings, stack)
        stack.push_async_callback(pool.close)
        applied = await migrate(pool)
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
        redis = _open_redis(settings)
        stack.push_async_callback(redis.aclose)
        bus = await _open_bus(settings, pool)
        stack.push_async_callback(bus.close)
        topology = Topology(settings.namespace, settings.router_prefetch, settings.delivery_limit)
        # Declared by every role, so no contact is dropped before the first router comes up.
        await bus.declare(topology.router_queue)
        await bus.declare(topology.dead_letter_queue)
        live = LiveState(
            redis,
            namespace=settings.namespace,
            reservation_ttl_ms=int(settings.reservation_timeout_seconds * 1000),
            events=settings.events,
        )
        cards, conversations = Cards(pool), Conversations(pool)
        relay = NoticeRelay(redis, settings.namespace, timeout=settings.publish_timeout_seconds)
        stack.push_async_callback(relay.close)
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        yield Services(
            pool=pool,
            redis=redis,
            bus=bus,
            topology=topology,
            live=live,
            directory=Directory(pool),
            cards=cards,
            conversations=conversations,
            relay=relay,
            notices=AgentNotices(relay, conversations),
            http=http,
        )


async def _open_database(settings: Settings, stack: contextlib.AsyncExitStack) -> asyncpg.Pool:
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    else:
        from contactcenter.host.embedded import start_postgres

        postgres = await start_postgres(settings.data_dir)
        stack.push_async_callback(postgres.stop)
        url = postgres.url
    return await open_pool(url, schema=settings.database_schema, events=settings.events)


def _open_redis(settings: Settings) -> aioredis.Redis:
    if settings.redis_url is not None:
        return aioredis.from_url(settings.redis_url.get_secret_value())
    from contactcenter.host.embedded import in_process_redis

    return in_process_redis()


@contextlib.asynccontextmanager
async def open_events_bus(settings: Settings, services: Services) -> AsyncIterator[Bus]:
    """The event relay's own connection to the broker. Its rounds go out as fast as the broker takes them, and
    RabbitMQ's flow control holds back a whole connection that publishes faster than its queues keep up: on the
    router's connection, the router's acks waited behind the relay's rounds and its deliveries stalled. In
    embedded mode, the one in-process bus."""
    if settings.amqp_url is None:
        yield services.bus
        return
    bus = await _open_bus(settings, services.pool)
    try:
        yield bus
    finally:
        await bus.close()


async def _open_bus(settings: Settings, pool: asyncpg.Pool) -> Bus:
    if settings.amqp_url is not None:
        from contactcenter.bus.amqp import connect_amqp

        return await connect_amqp(
            settings.amqp_url.get_secret_value(), publish_timeout=settings.publish_timeout_seconds
        )
    from contactcenter.bus.journal import PostgresJournal
    from contactcenter.bus.memory import MemoryBus

    # Journaled in the service's own PostgreSQL: a contact acknowledged to its provider survives the process.
    return MemoryBus(await PostgresJournal.open(pool), publish_timeout=settings.publish_timeout_seconds)
