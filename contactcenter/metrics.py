"""Prometheus metrics, one registry per app (several apps in one test process never collide).

Counters and histograms move on the hot path (an increment, no more; labels only of bounded values — a
channel, a reason, an outcome, a status class — never an id or a number). What live state holds (waiting
work per queue, agents by state) and the health of the pool and the bus are read when Prometheus scrapes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Protocol, TypeVar, cast

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contactcenter.errors import ContactCenterError, Overloaded

M = TypeVar("M", Counter, Histogram)


class IntakeMetrics:
    """What the channel adapters took in from providers, refused (by the error's code), and handed to routers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "cc_webhooks_received", "Webhooks received from providers.", ["channel"], registry=registry
        )
        self.refused = Counter(
            "cc_webhooks_refused",
            "Webhooks answered with an error, by its code (forbidden: bad signature, unavailable: retry later).",
            ["channel", "reason"],
            registry=registry,
        )
        self.published = Counter(
            "cc_interactions_published", "Interactions the bus confirmed.", ["channel"], registry=registry
        )
        self.publish_seconds = Histogram(
            "cc_publish_seconds", "From publish to the broker's confirm.", ["channel"], registry=registry
        )
        self._labelled: dict[tuple[int, str], Counter | Histogram] = {}

    @contextlib.contextmanager
    def webhook(self, channel: str) -> Iterator[None]:
        """Count one webhook, and its refusal if the block raises one of our errors."""
        self._children(self.received, channel).inc()
        try:
            yield
        except ContactCenterError as exc:
            # Overload shares `unavailable` with a broker that did not confirm in its answer (both: retry), not
            # here: an operator must tell "add capacity" from "the broker is down".
            self.refused.labels(channel, "overloaded" if isinstance(exc, Overloaded) else exc.code).inc()
            raise

    @contextlib.contextmanager
    def publishing(self, channel: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self._children(self.publish_seconds, channel).observe(time.perf_counter() - started)
        self._children(self.published, channel).inc()

    def _children(self, metric: M, channel: str) -> M:
        """`metric.labels(channel)`, looked up once: `labels` takes a lock and checks its values on every call,
        several times per webhook."""
        key = (id(metric), channel)
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(channel)
        return cast(M, child)


class RoutingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.routed = Counter(
            "cc_interactions_routed",
            "Interactions routed, by outcome (queued, to_agent, unrouted, closed).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "cc_routing_seconds", "From the start of routing to the agent told.", ["channel"], registry=registry
        )
        self.failures = Counter(
            "cc_routing_failures",
            "Routing attempts that failed (the delivery goes back; past the limit, to the dead letters); a message "
            "that does not parse counts under the channel `unreadable`.",
            ["channel"],
            registry=registry,
        )


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.suspensions = Counter(
            "cc_webhook_suspensions",
            "Webhooks this process suspended: their line passed CC_WEBHOOK_MAX_PENDING while its head kept failing "
            "(parked until an admin's replay; docs/webhooks.md).",
            registry=registry,
        )


class LiveMetrics:
    """Read at scrape time: what live state and the services say now."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.waiting = Gauge("cc_queue_waiting", "Conversations waiting in each queue.", ["queue"], registry=registry)
        self.agents = Gauge("cc_agents", "Agents by state.", ["state"], registry=registry)
        self.live_state_read = Gauge(
            "cc_live_state_read", "1 when the last scrape read live state in time, 0 otherwise.", registry=registry
        )
        self.pool_size = Gauge("cc_database_pool_connections", "Connections in the asyncpg pool.", registry=registry)
        self.pool_idle = Gauge("cc_database_pool_idle_connections", "Idle connections in the pool.", registry=registry)
        self.pool_max = Gauge("cc_database_pool_max_connections", "The pool's bound.", registry=registry)
        self.dead_letters = Gauge(
            "cc_dead_letters_waiting",
            "Interactions dead-lettered (failed past CC_DELIVERY_LIMIT) and waiting for an operator.",
            registry=registry,
        )
        self.bus_up = Gauge("cc_bus_up", "1 when the bus answers.", registry=registry)
        self.redis_up = Gauge("cc_redis_up", "1 when Redis answers.", registry=registry)


class GuardedConnections(Protocol):
    """What the connection guard (`contactcenter.host.connections`) counts."""

    refused: int
    cut_off: int

    @property
    def open_connections(self) -> int: ...


class _ConnectionsCollector(Collector):
    """The guard's own counts, read when Prometheus scrapes: nothing on the connections' path."""

    def __init__(self, guard: GuardedConnections) -> None:
        self._guard = guard

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "cc_connections_refused", "Connections refused past CC_MAX_CONNECTIONS_PER_CLIENT.", self._guard.refused
        )
        yield CounterMetricFamily(
            "cc_connections_cut_off",
            "Connections closed at a deadline (headers, body, or a client that stopped reading).",
            self._guard.cut_off,
        )
        yield GaugeMetricFamily("cc_connections_open", "Connections open now.", self._guard.open_connections)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.intake = IntakeMetrics(self.registry)
        self.routing = RoutingMetrics(self.registry)
        self.live = LiveMetrics(self.registry)
        self.webhooks = WebhookMetrics(self.registry)
        self.http_responses = Counter(
            "cc_http_responses",
            "HTTP responses by status class (2xx, 4xx, 5xx …).",
            ["status_class"],
            registry=self.registry,
        )
        # One child per status class, looked up once (`labels` locks and checks its values on every call).
        self._responses_by_class: dict[int, Counter] = {}

    def _count_status(self, status: int) -> None:
        status_class = status // 100
        child = self._responses_by_class.get(status_class)
        if child is None:
            child = self._responses_by_class[status_class] = self.http_responses.labels(f"{status_class}xx")
        child.inc()

    def watch_connections(self, guard: GuardedConnections) -> None:
        self.registry.register(_ConnectionsCollector(guard))

    @web.middleware
    async def count_responses(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Outside the error mapping, so it counts what the client got."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self._count_status(exc.status)
            raise
        except Exception:
            self._count_status(500)  # aiohttp answers anything else with a 500
            raise
        self._count_status(response.status)
        return response


METRICS = web.AppKey("metrics", Metrics)
