"""The app assembly: wires the roles (API, router) on the opened services (`host.services`) and registers the
channels from one list. Resources open in the aiohttp app's cleanup contexts and close in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from enum import StrEnum

from aiohttp import web

from channels import ChannelAdapter, ChannelContext, ChannelParts, ChannelServer
from channels.email import EmailChannel
from channels.intake.admission import Admission
from channels.intake.publishing import InteractionPublisher
from channels.twilio import TwilioChannel
from channels.webchat import WebChatChannel
from contactcenter.agents.calls import AgentCalls
from contactcenter.agents.gateway import AgentGateway
from contactcenter.agents.presence import AgentPresence
from contactcenter.agents.relay import NoticeRelay
from contactcenter.agents.releases import LiveReleases
from contactcenter.agents.replies import Replies
from contactcenter.agents.staffing import Staffing
from contactcenter.agents.withdrawal import Withdrawals
from contactcenter.api.admin import AdminApi
from contactcenter.api.card_edits import CardEditsApi
from contactcenter.api.clients import ClientsApi
from contactcenter.api.events import EventsApi
from contactcenter.api.integrations import IntegrationsApi
from contactcenter.api.merges import MergesApi
from contactcenter.api.openapi import OpenApiDocument
from contactcenter.api.operations import Operation
from contactcenter.api.privacy import PrivacyApi
from contactcenter.api.shared_identifiers import SharedIdentifiersApi
from contactcenter.auth import Authenticator
from contactcenter.events.relay import EventRelay
from contactcenter.events.stream import LiveEventStream
from contactcenter.host.health import Health
from contactcenter.host.scrape import MetricsEndpoint
from contactcenter.host.services import Services, open_events_bus, open_services
from contactcenter.http_errors import error_middleware
from contactcenter.live.rates import RedisRate
from contactcenter.metrics import METRICS, Metrics
from contactcenter.origins import web_origins
from contactcenter.periodic import Periodic
from contactcenter.settings import Settings
from contactcenter.store.calls import CallOccupations
from contactcenter.store.card_edits import CardEdits
from contactcenter.store.integrations import Integrations
from contactcenter.store.merges import Merges
from contactcenter.store.privacy import Privacy
from contactcenter.store.proofs import ProvedIdentities
from contactcenter.store.releases import PendingReleases
from contactcenter.store.shared_identifiers import SharedIdentifierList
from contactcenter.store.transfers import ConversationTransfers
from contactcenter.store.waiting import WaitingContacts
from contactcenter.supervision.actions import SupervisorActions
from contactcenter.supervision.api import SupervisorApi
from contactcenter.supervision.feed import WatchFeed
from contactcenter.supervision.figures import Figures
from contactcenter.supervision.pages import Pages
from contactcenter.supervision.watch import QueueWatch
from contactcenter.webhooks.api import WebhooksApi
from contactcenter.webhooks.bindings import WebhookBindings
from contactcenter.webhooks.deliveries import Deliveries
from contactcenter.webhooks.destinations import GuardedResolver
from contactcenter.webhooks.dispatcher import RetryPolicy, WebhookDispatcher
from contactcenter.webhooks.registry import Webhooks
from contactcenter.webhooks.retention import event_retention
from contactcenter.webhooks.sender import DeliverySender, open_delivery_session
from routing.placement import ContactPlacement
from routing.recovery import LiveStateRecovery
from routing.router import Router
from routing.sweeper import ReservationSweeper
from schema import Channel

log = logging.getLogger(__name__)


class Role(StrEnum):
    API = "api"
    ROUTER = "router"
    SMTP = "smtp"
    # The event relay (and the event log's retention) in a process of its own: its work leaves the router's event
    # loop. Routers relay too unless CC_ROUTER_RELAYS=false (one publishes at a time: an advisory lock).
    RELAY = "relay"
    ALL = "all"


# Every channel the service speaks: adding one is its package under `channels/` and one line here.
CHANNELS: tuple[ChannelAdapter, ...] = (TwilioChannel(), EmailChannel(), WebChatChannel())

# Every class of the host that serves part of the HTTP API, each declaring its operations: the API's document
# is theirs and the channels'.
HTTP_APIS = (
    Health,
    MetricsEndpoint,
    AdminApi,
    ClientsApi,
    CardEditsApi,
    MergesApi,
    PrivacyApi,
    SharedIdentifiersApi,
    AgentGateway,
    EventsApi,
    IntegrationsApi,
    WebhooksApi,
    SupervisorApi,
    Pages,
    OpenApiDocument,
)

# How often the retention job runs (contactcenter/events/retention.py: bounded batches, a bounded number each run).
RETENTION_CHECK_SECONDS = 600.0
# How often routers look for the live state an erasure's process left to take back (contactcenter/agents/releases.py).
RELEASE_SWEEP_SECONDS = 5.0

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
ADMISSION = web.AppKey("admission", Admission)
# The channels' intakes this process runs (SMTP, IMAP polling), started: tests read the port one chose.
CHANNEL_INTAKES = web.AppKey("channel_intakes", list[ChannelServer])
# What closes the long-lived connections (agents' and visitors' sockets, supervisors' streams) as soon as the
# service begins to stop (`on_shutdown`): aiohttp waits for the requests in progress before the cleanup contexts
# run — up to 60 s for a socket nobody closed — which held every rolling restart of the API that long.
DISCONNECTS = web.AppKey("disconnects", list[Callable[[], Awaitable[None]]])


def create_app(settings: Settings, role: Role = Role.ALL) -> web.Application:
    metrics = Metrics()
    # Responses are counted outside the error mapping: as the client saw them.
    app = web.Application(middlewares=[metrics.count_responses, error_middleware], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[DISCONNECTS] = []
    app.on_shutdown.append(_disconnect_clients)
    app.cleanup_ctx.append(_services_context)
    app.cleanup_ctx.append(_role_context(role))
    return app


async def _disconnect_clients(app: web.Application) -> None:
    await asyncio.gather(*(disconnect() for disconnect in app[DISCONNECTS]))


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
            auth = _authenticator(settings, services)
            apart = role in (Role.ROUTER, Role.RELAY)
            channels = _open_channels(app, settings, services, auth) if not apart else []
            if role in (Role.API, Role.ALL):
                await _start_api(app, settings, services, auth, channels, stack)
            if role in (Role.SMTP, Role.ALL):
                await _start_channel_intakes(app, channels, stack)
            if role in (Role.ROUTER, Role.ALL):
                await _start_router(settings, services, metrics, stack)
            if settings.events and _relays(role, settings):
                await _start_events(settings, services, stack)
            yield

    return context


def _relays(role: Role, settings: Settings) -> bool:
    """Whether this process runs the event relay: a relay does, and a router (or the one process) unless told
    not to — an existing layout keeps relaying without a relay process."""
    return role is Role.RELAY or (role in (Role.ROUTER, Role.ALL) and settings.router_relays)


async def _start_api(
    app: web.Application,
    settings: Settings,
    services: Services,
    auth: Authenticator,
    channels: list[ChannelParts],
    stack: contextlib.AsyncExitStack,
) -> None:
    integrations = Integrations(services.pool)
    guard = GuardedResolver(allow_private=settings.webhook_allow_private)
    stack.push_async_callback(guard.close)
    senders = {channel: sender for parts in channels for channel, sender in parts.senders.items()}
    answerers = {channel: answerer for parts in channels for channel, answerer in parts.answerers.items()}
    parties = {channel: party for parts in channels for channel, party in parts.parties.items()}
    gateway = AgentGateway(
        relay=services.relay,
        auth=auth,
        live=services.live,
        conversations=services.conversations,
        notices=services.notices,
        placement=ContactPlacement(services.live, services.conversations, services.notices),
        replies=Replies(services.conversations, senders),
        transfers=ConversationTransfers(services.pool),
        allowed_origins=web_origins(settings),
        answerers=answerers,
        parties=parties,
        wrap_up_seconds=settings.wrap_up_seconds,
    )
    gateway.start()
    app[DISCONNECTS].append(gateway.stop)
    restore_states = Periodic(
        "agent-state check", gateway.restore_lost_states, every_seconds=settings.live_check_seconds
    )
    restore_states.start()
    stack.push_async_callback(restore_states.stop)
    supervisors = await _start_supervision(settings, services, auth, stack)
    app[DISCONNECTS].extend([supervisors.end_streams, *(close for parts in channels for close in parts.disconnects)])
    releases = LiveReleases(PendingReleases(services.pool), services.live, services.notices)
    for server in (server for parts in channels for server in parts.servers):
        await server.start()
        stack.push_async_callback(server.stop)
    app.router.add_routes(
        [
            *(route for parts in channels for route in parts.routes),
            *AdminApi(auth, services.directory).routes(),
            *ClientsApi(auth, services.cards, settings.default_region).routes(),
            *CardEditsApi(
                auth, services.cards, CardEdits(services.pool), ProvedIdentities(services.pool), settings.default_region
            ).routes(),
            *MergesApi(auth, services.cards, Merges(services.pool)).routes(),
            *PrivacyApi(auth, services.cards, Privacy(services.pool), releases).routes(),
            *SharedIdentifiersApi(auth, SharedIdentifierList(services.pool)).routes(),
            *gateway.routes(),
            *EventsApi(auth, services.pool, settings.namespace).routes(),
            *IntegrationsApi(auth, integrations, _webhooks(services).delete_integration).routes(),
            *WebhooksApi(auth, _webhooks(services), guard).routes(),
            *supervisors.routes(),
            *Pages().routes(),
            *OpenApiDocument(http_operations()).routes(),
        ]
    )


async def _start_channel_intakes(
    app: web.Application, channels: list[ChannelParts], stack: contextlib.AsyncExitStack
) -> None:
    started = app[CHANNEL_INTAKES] = []
    for server in (server for parts in channels for server in parts.intakes):
        await server.start()
        stack.push_async_callback(server.stop)
        started.append(server)


def _authenticator(settings: Settings, services: Services) -> Authenticator:
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    return Authenticator(admin_token, services.directory, Integrations(services.pool))


async def _start_supervision(
    settings: Settings, services: Services, auth: Authenticator, stack: contextlib.AsyncExitStack
) -> SupervisorApi:
    """One watch of the queues for this process, whoever watches: supervisors' figures from the event stream."""
    watch = QueueWatch(
        pool=services.pool,
        directory=services.directory,
        live=services.live,
        figures=Figures(
            short_abandon_seconds=settings.short_abandon_seconds,
            default_target_seconds=20.0,
            default_goal=0.8,
        ),
        follow_seconds=settings.supervisor_follow_seconds,
        feed=WatchFeed(
            services.redis, settings.namespace, lease_seconds=max(3.0, 10 * settings.supervisor_follow_seconds)
        ),
    )
    await watch.start()
    stack.push_async_callback(watch.stop)
    actions = SupervisorActions(services.pool, services.live, services.directory, services.notices, services.relay)
    return SupervisorApi(
        auth,
        services.pool,
        services.directory,
        watch,
        actions,
        frame_seconds=settings.supervisor_frame_seconds,
        short_abandon_seconds=settings.short_abandon_seconds,
    )


def _open_channels(
    app: web.Application, settings: Settings, services: Services, auth: Authenticator
) -> list[ChannelParts]:
    admission = app[ADMISSION] = Admission(settings.webhook_concurrency)  # shared by every provider's webhooks
    publisher = InteractionPublisher(
        services.bus, services.topology, timeout=settings.publish_timeout_seconds, batch=settings.inbound_batch
    )
    withdrawals = Withdrawals(WaitingContacts(services.pool), services.live, services.notices)

    def socket_notices(audience: str) -> NoticeRelay:
        return NoticeRelay(
            services.redis, settings.namespace, timeout=settings.publish_timeout_seconds, audience=audience
        )

    def rate_limit(audience: str, per_minute: int, burst: int) -> RedisRate:
        return RedisRate(
            services.redis,
            namespace=settings.namespace,
            audience=audience,
            per_minute=per_minute,
            burst=burst,
            timeout=settings.publish_timeout_seconds,
        )

    context = ChannelContext(
        settings=settings,
        publisher=publisher,
        admission=admission,
        metrics=app[METRICS].intake,
        http=services.http,
        pool=services.pool,
        gatekeeper=auth,
        withdrawals=withdrawals,
        calls=AgentCalls(
            services.live,
            CallOccupations(services.pool),
            services.notices,
            max_call_seconds=settings.voice_max_call_seconds,
        ),
        socket_notices=socket_notices,
        presence=AgentPresence(services.conversations, services.notices),
        staffing=Staffing(services.pool, services.live),
        rate_limit=rate_limit,
        proved_identities=ProvedIdentities(services.pool),
    )
    parts = [channel.parts(context) for channel in CHANNELS]
    _one_package_per_channel(parts)
    return parts


def _one_package_per_channel(parts: list[ChannelParts]) -> None:
    """A conversation channel's replies (and its answer to an accept, and its live presence) come from one
    package: with two, the order of `CHANNELS` would choose which one an agent's reply leaves by, unsaid."""
    for what in ("senders", "answerers", "parties"):
        served_by: dict[Channel, str] = {}
        for adapter, added in zip(CHANNELS, parts, strict=True):
            serves: Mapping[Channel, object] = getattr(added, what)
            for channel in serves:
                if channel in served_by:
                    raise ValueError(
                        f"two channel packages serve the {what} of {channel}: "
                        f"{served_by[channel]} and {type(adapter).__name__} (contactcenter.host.app.CHANNELS)"
                    )
                served_by[channel] = type(adapter).__name__


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
    recovery = LiveStateRecovery(
        services.live, services.conversations, services.notices, CallOccupations(services.pool)
    )
    releases = LiveReleases(PendingReleases(services.pool), services.live, services.notices)
    for job in (
        Periodic("live-state recovery", recovery.check, every_seconds=settings.live_check_seconds),
        Periodic("reservation sweep", sweeper.sweep, every_seconds=1.0),
        Periodic("live releases left", releases.sweep, every_seconds=RELEASE_SWEEP_SECONDS),
    ):
        job.start()
        stack.push_async_callback(job.stop)
    if settings.events:
        await _start_webhook_dispatcher(settings, services, metrics, stack)


async def _start_events(settings: Settings, services: Services, stack: contextlib.AsyncExitStack) -> None:
    """The outbox relay and the event log's retention: a relay's work, and a router's unless told otherwise
    (CC_ROUTER_RELAYS=false), as routers run wherever the service does."""
    relay = EventRelay(
        services.pool,
        await stack.enter_async_context(open_events_bus(settings, services)),
        services.topology.events,
        LiveEventStream(services.redis, settings.namespace),
        schema=settings.database_schema,
        sweep_seconds=settings.event_sweep_seconds,
        batch=settings.event_batch,
        linger_seconds=settings.event_linger_seconds,
    )
    relay.start()
    stack.push_async_callback(relay.stop)

    retention = event_retention(
        services.pool,
        event_days=settings.event_retention_days,
        delivered_hours=settings.webhook_delivered_retention_hours,
        tombstone_hours=settings.identity_tombstone_retention_hours,
    )

    async def purge() -> None:
        await retention.purge()

    purging = Periodic("event retention", purge, every_seconds=RETENTION_CHECK_SECONDS)
    purging.start()
    stack.push_async_callback(purging.stop)


def _webhooks(services: Services) -> Webhooks:
    return Webhooks(services.pool, WebhookBindings(services.bus, services.topology.webhooks_queue))


async def _start_webhook_dispatcher(
    settings: Settings, services: Services, metrics: Metrics, stack: contextlib.AsyncExitStack
) -> None:
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
            max_pending=settings.webhook_max_pending,
        ),
        scan_seconds=settings.webhook_scan_seconds,
        send_timeout=settings.webhook_timeout_seconds,
        metrics=metrics.webhooks,
    )
    await dispatcher.start()
    stack.push_async_callback(dispatcher.stop)
