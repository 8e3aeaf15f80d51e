"""The app assembly: the one place that knows which adapter runs (embedded or production) and wires the
roles. Resources open in the aiohttp app's cleanup contexts and close in reverse."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from channels.admission import Admission
from channels.publishing import InteractionPublisher
from channels.replies import ReplySender
from channels.sms import SmsWebhook
from channels.twilio_rest import TwilioSmsSender
from contactcenter.agents.gateway import AgentGateway
from contactcenter.agents.notices import AgentNotices
from contactcenter.agents.relay import NoticeRelay
from contactcenter.agents.replies import Replies
from contactcenter.api.admin import AdminApi
from contactcenter.api.clients import ClientsApi
from contactcenter.api.integrations import IntegrationsApi
from contactcenter.api.openapi import OpenApiDocument
from contactcenter.api.operations import Operation
from contactcenter.auth import Authenticator
from contactcenter.bus import Bus, QueueSpec
from contactcenter.health import Health
from contactcenter.http_errors import error_middleware
from contactcenter.live.state import LiveState
from contactcenter.metrics import METRICS, Metrics
from contactcenter.origins import web_origins
from contactcenter.periodic import Periodic
from contactcenter.scrape import MetricsEndpoint
from contactcenter.settings import Settings
from contactcenter.store import open_pool
from contactcenter.store.cards import Cards
from contactcenter.store.conversations import Conversations
from contactcenter.store.directory import Directory
from contactcenter.store.integrations import Integrations
from contactcenter.store.migrate import migrate
from contactcenter.topology import Topology
from contactcenter.webhooks.api import WebhooksApi
from contactcenter.webhooks.deliveries import Deliveries
from contactcenter.webhooks.destinations import GuardedResolver
from contactcenter.webhooks.dispatcher import RetryPolicy, WebhookDispatcher
from contactcenter.webhooks.registry import Webhooks
from contactcenter.webhooks.sender import DeliverySender, open_delivery_session
from routing.recovery import LiveStateRecovery
from routing.router import Router
from routing.sweeper import ReservationSweeper
from schema import Channel

log = logging.getLogger(__name__)


class Role(StrEnum):
    API = "api"
    ROUTER = "router"
    ALL = "all"


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


# Every class that serves part of the HTTP API, each declaring its operations: the API's document is theirs.
HTTP_APIS = (
    Health,
    MetricsEndpoint,
    SmsWebhook,
    AdminApi,
    ClientsApi,
    AgentGateway,
    IntegrationsApi,
    WebhooksApi,
    OpenApiDocument,
)

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
ADMISSION = web.AppKey("admission", Admission)


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
        from contactcenter.embedded import start_postgres

        postgres = await start_postgres(settings.data_dir)
        stack.push_async_callback(postgres.stop)
        url = postgres.url
    return await open_pool(url, schema=settings.database_schema)


def _open_redis(settings: Settings) -> aioredis.Redis:
    if settings.redis_url is not None:
        return aioredis.from_url(settings.redis_url.get_secret_value())
    from contactcenter.embedded import in_process_redis

    return in_process_redis()


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


def create_app(settings: Settings, role: Role = Role.ALL) -> web.Application:
    metrics = Metrics()
    # Responses are counted outside the error mapping: as the client saw them.
    app = web.Application(middlewares=[metrics.count_responses, error_middleware], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app.cleanup_ctx.append(_services_context)
    app.cleanup_ctx.append(_role_context(role))
    return app


async def _services_context(app: web.Application) -> AsyncIterator[None]:
    async with open_services(app[SETTINGS]) as services:
        app[SERVICES] = services
        yield


def _role_context(role: Role) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings, services, metrics = app[SETTINGS], app[SERVICES], app[METRICS]
        async with contextlib.AsyncExitStack() as stack:
            app.router.add_routes(Health(services).routes())
            metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
            app.router.add_routes(MetricsEndpoint(metrics, services, metrics_token).routes())
            if role in (Role.API, Role.ALL):
                await _start_api(app, settings, services, stack)
            if role in (Role.ROUTER, Role.ALL):
                await _start_router(settings, services, metrics, stack)
            yield

    return context


async def _start_api(
    app: web.Application, settings: Settings, services: Services, stack: contextlib.AsyncExitStack
) -> None:
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    integrations = Integrations(services.pool)
    auth = Authenticator(admin_token, services.directory, integrations)
    guard = GuardedResolver(allow_private=settings.webhook_allow_private)
    stack.push_async_callback(guard.close)
    gateway = AgentGateway(
        relay=services.relay,
        auth=auth,
        live=services.live,
        conversations=services.conversations,
        notices=services.notices,
        replies=Replies(services.conversations, _reply_senders(settings, services)),
        allowed_origins=web_origins(settings),
    )
    gateway.start()
    stack.push_async_callback(gateway.stop)
    restore_states = Periodic(
        "agent-state check", gateway.restore_lost_states, every_seconds=settings.live_check_seconds
    )
    restore_states.start()
    stack.push_async_callback(restore_states.stop)
    admission = app[ADMISSION] = Admission(settings.webhook_concurrency)  # shared by every provider's webhooks
    publisher = InteractionPublisher(
        services.bus, services.topology, timeout=settings.publish_timeout_seconds, batch=settings.inbound_batch
    )
    sms = SmsWebhook(settings, publisher, admission, app[METRICS].intake)
    app.router.add_routes(
        [
            *sms.routes(),
            *AdminApi(auth, services.directory).routes(),
            *ClientsApi(auth, services.cards, settings.default_region).routes(),
            *gateway.routes(),
            *IntegrationsApi(auth, integrations).routes(),
            *WebhooksApi(auth, Webhooks(services.pool), guard).routes(),
            *OpenApiDocument(http_operations()).routes(),
        ]
    )


def http_operations() -> list[Operation]:
    """Every operation of the HTTP API, whichever role serves it."""
    return [operation for api in HTTP_APIS for operation in api.OPERATIONS]


def _reply_senders(settings: Settings, services: Services) -> dict[Channel, ReplySender]:
    sms = TwilioSmsSender(
        services.http,
        api_base=settings.twilio_api_base,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
    )
    return {Channel.SMS: sms}


async def _start_router(
    settings: Settings, services: Services, metrics: Metrics, stack: contextlib.AsyncExitStack
) -> None:
    router = Router(
        bus=services.bus,
        topology=services.topology,
        conversations=services.conversations,
        live=services.live,
        notices=services.notices,
        default_region=settings.default_region,
        metrics=metrics.routing,
    )
    subscription = await router.start()
    stack.push_async_callback(subscription.close)
    sweeper = ReservationSweeper(services.live, services.notices)
    recovery = LiveStateRecovery(services.live, services.conversations, services.notices)
    for job in (
        Periodic("live-state recovery", recovery.check, every_seconds=settings.live_check_seconds),
        Periodic("reservation sweep", sweeper.sweep, every_seconds=1.0),
    ):
        job.start()
        stack.push_async_callback(job.stop)
    await _start_webhook_dispatcher(settings, services, stack)


async def _start_webhook_dispatcher(settings: Settings, services: Services, stack: contextlib.AsyncExitStack) -> None:
    guard = GuardedResolver(allow_private=settings.webhook_allow_private)
    stack.push_async_callback(guard.close)
    http = open_delivery_session(guard)
    stack.push_async_callback(http.close)
    dispatcher = WebhookDispatcher(
        bus=services.bus,
        queue=QueueSpec(
            name=f"{settings.namespace}.webhooks",
            exchange=f"{settings.namespace}.events",  # the events exchange (issue 15's relay publishes there)
            binding_keys=("#",),
            prefetch=settings.router_prefetch,
            delivery_limit=settings.delivery_limit,
            dead_letter_exchange=services.topology.dead_letters,
        ),
        deliveries=Deliveries(services.pool),
        webhooks=Webhooks(services.pool),
        sender=DeliverySender(http, guard, timeout=settings.webhook_timeout_seconds),
        retry=RetryPolicy(
            retries=settings.webhook_retries,
            base_seconds=settings.webhook_retry_base_seconds,
            max_seconds=settings.webhook_retry_max_seconds,
        ),
        scan_seconds=settings.webhook_scan_seconds,
        send_timeout=settings.webhook_timeout_seconds,
    )
    await dispatcher.start()
    stack.push_async_callback(dispatcher.stop)
