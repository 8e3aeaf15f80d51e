"""The app assembly: wires the roles (API, router) on the opened services (`host.services`) and registers the
channels from one list. Resources open in the aiohttp app's cleanup contexts and close in reverse."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from enum import StrEnum

from aiohttp import web

from channels import ChannelAdapter, ChannelContext, ChannelParts
from channels.intake.admission import Admission
from channels.intake.publishing import InteractionPublisher
from channels.twilio import TwilioChannel
from contactcenter.agents.gateway import AgentGateway
from contactcenter.agents.replies import Replies
from contactcenter.api.admin import AdminApi
from contactcenter.api.clients import ClientsApi
from contactcenter.api.events import EventsApi
from contactcenter.api.integrations import IntegrationsApi
from contactcenter.api.openapi import OpenApiDocument
from contactcenter.api.operations import Operation
from contactcenter.auth import Authenticator
from contactcenter.events import outbox
from contactcenter.events.relay import EventRelay
from contactcenter.events.stream import LiveEventStream
from contactcenter.host.health import Health
from contactcenter.host.scrape import MetricsEndpoint
from contactcenter.host.services import Services, open_events_bus, open_services
from contactcenter.http_errors import error_middleware
from contactcenter.metrics import METRICS, Metrics
from contactcenter.origins import web_origins
from contactcenter.periodic import Periodic
from contactcenter.settings import Settings
from contactcenter.store.integrations import Integrations
from contactcenter.webhooks.api import WebhooksApi
from contactcenter.webhooks.bindings import WebhookBindings
from contactcenter.webhooks.deliveries import Deliveries
from contactcenter.webhooks.destinations import GuardedResolver
from contactcenter.webhooks.dispatcher import RetryPolicy, WebhookDispatcher
from contactcenter.webhooks.registry import Webhooks
from contactcenter.webhooks.sender import DeliverySender, open_delivery_session
from routing.placement import ContactPlacement
from routing.recovery import LiveStateRecovery
from routing.router import Router
from routing.sweeper import ReservationSweeper

log = logging.getLogger(__name__)


class Role(StrEnum):
    API = "api"
    ROUTER = "router"
    ALL = "all"


# Every channel the service speaks: adding one is its package under `channels/` and one line here.
CHANNELS: tuple[ChannelAdapter, ...] = (TwilioChannel(),)

# Every class of the host that serves part of the HTTP API, each declaring its operations: the API's document
# is theirs and the channels'.
HTTP_APIS = (
    Health,
    MetricsEndpoint,
    AdminApi,
    ClientsApi,
    AgentGateway,
    EventsApi,
    IntegrationsApi,
    WebhooksApi,
    OpenApiDocument,
)

# How often published events past CC_EVENT_RETENTION_DAYS are deleted (a bounded batch each time).
RETENTION_CHECK_SECONDS = 600.0

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
ADMISSION = web.AppKey("admission", Admission)


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
            app.router.add_routes(Health(services.pool, services.redis, services.bus).routes())
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
    channels = _open_channels(app, settings, services)
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    integrations = Integrations(services.pool)
    auth = Authenticator(admin_token, services.directory, integrations)
    guard = GuardedResolver(allow_private=settings.webhook_allow_private)
    stack.push_async_callback(guard.close)
    senders = {channel: sender for parts in channels for channel, sender in parts.senders.items()}
    gateway = AgentGateway(
        relay=services.relay,
        auth=auth,
        live=services.live,
        conversations=services.conversations,
        notices=services.notices,
        placement=ContactPlacement(services.live, services.conversations, services.notices),
        replies=Replies(services.conversations, senders),
        allowed_origins=web_origins(settings),
    )
    gateway.start()
    stack.push_async_callback(gateway.stop)
    restore_states = Periodic(
        "agent-state check", gateway.restore_lost_states, every_seconds=settings.live_check_seconds
    )
    restore_states.start()
    stack.push_async_callback(restore_states.stop)
    for server in (server for parts in channels for server in parts.servers):
        await server.start()
        stack.push_async_callback(server.stop)
    app.router.add_routes(
        [
            *(route for parts in channels for route in parts.routes),
            *AdminApi(auth, services.directory).routes(),
            *ClientsApi(auth, services.cards, settings.default_region).routes(),
            *gateway.routes(),
            *EventsApi(auth, services.pool, settings.namespace).routes(),
            *IntegrationsApi(auth, integrations).routes(),
            *WebhooksApi(auth, _webhooks(services), guard).routes(),
            *OpenApiDocument(http_operations()).routes(),
        ]
    )


def _open_channels(app: web.Application, settings: Settings, services: Services) -> list[ChannelParts]:
    admission = app[ADMISSION] = Admission(settings.webhook_concurrency)  # shared by every provider's webhooks
    publisher = InteractionPublisher(
        services.bus, services.topology, timeout=settings.publish_timeout_seconds, batch=settings.inbound_batch
    )
    context = ChannelContext(settings, publisher, admission, app[METRICS].intake, services.http)
    return [channel.parts(context) for channel in CHANNELS]


def http_operations() -> list[Operation]:
    """Every operation of the HTTP API, whichever role serves it."""
    host = [operation for api in HTTP_APIS for operation in api.OPERATIONS]
    return host + [operation for channel in CHANNELS for operation in channel.operations]


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
    stack.callback(router.stop)  # first: a delivery waiting for a service lets the subscription close
    sweeper = ReservationSweeper(services.live, services.notices)
    recovery = LiveStateRecovery(services.live, services.conversations, services.notices)
    for job in (
        Periodic("live-state recovery", recovery.check, every_seconds=settings.live_check_seconds),
        Periodic("reservation sweep", sweeper.sweep, every_seconds=1.0),
    ):
        job.start()
        stack.push_async_callback(job.stop)
    if settings.events:
        await _start_events(settings, services, stack)
        await _start_webhook_dispatcher(settings, services, stack)


async def _start_events(settings: Settings, services: Services, stack: contextlib.AsyncExitStack) -> None:
    """The outbox relay and the event log's retention: routers' work, as they run wherever the service does."""
    relay = EventRelay(
        services.pool,
        await stack.enter_async_context(open_events_bus(settings, services)),
        services.topology.events,
        LiveEventStream(services.redis, settings.namespace, services.pool),
        schema=settings.database_schema,
        sweep_seconds=settings.event_sweep_seconds,
        batch=settings.event_batch,
        linger_seconds=settings.event_linger_seconds,
    )
    relay.start()
    stack.push_async_callback(relay.stop)

    async def forget_old_events() -> None:
        await outbox.forget_older_than(services.pool, settings.event_retention_days)

    retention = Periodic("event retention", forget_old_events, every_seconds=RETENTION_CHECK_SECONDS)
    retention.start()
    stack.push_async_callback(retention.stop)


def _webhooks(services: Services) -> Webhooks:
    return Webhooks(services.pool, WebhookBindings(services.bus, services.topology.webhooks_queue))


async def _start_webhook_dispatcher(settings: Settings, services: Services, stack: contextlib.AsyncExitStack) -> None:
    guard = GuardedResolver(allow_private=settings.webhook_allow_private)
    stack.push_async_callback(guard.close)
    http = open_delivery_session(guard)
    stack.push_async_callback(http.close)
    webhooks = _webhooks(services)
    await webhooks.bind_every_pattern()
    dispatcher = WebhookDispatcher(
        bus=services.bus,
        queue=services.topology.webhooks_queue,
        deliveries=Deliveries(services.pool),
        webhooks=webhooks,
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
