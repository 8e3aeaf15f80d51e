"""The webhook dispatchers' queue follows the registered webhooks (`contactcenter.webhooks.bindings`), on the
AMQP bus and the in-process one alike: an event reaches it only when a webhook wants it, every event published
after a registration does, and a deletion never takes away a pattern another webhook still has."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from contactcenter.bus import Bus
from contactcenter.bus.amqp import connect_amqp
from contactcenter.bus.interactions import Topology
from contactcenter.bus.memory import MemoryBus
from contactcenter.errors import NotFound
from contactcenter.store.integrations import Integrations
from contactcenter.webhooks.bindings import WebhookBindings
from contactcenter.webhooks.registry import Webhooks
from schema.webhooks import IntegrationCreate, WebhookCreate


@pytest.fixture(params=["amqp", "memory"])
async def bus(request: pytest.FixtureRequest, amqp_url: str, amqp_cleanup: None) -> AsyncIterator[Bus]:
    opened: Bus = await connect_amqp(amqp_url, publish_timeout=5) if request.param == "amqp" else MemoryBus()
    yield opened
    await opened.close()


class Queue:
    """The dispatchers' queue, with no dispatcher reading it: what reaches it stays there to be counted."""

    def __init__(self, bus: Bus, namespace: str) -> None:
        self.bus = bus
        self.spec = Topology(namespace).webhooks_queue

    async def publish(self, *routing_keys: str) -> None:
        for key in routing_keys:
            await self.bus.publish(self.spec.exchange, key, b"{}", message_id=uuid.uuid4().hex)

    async def holds(self, count: int) -> None:
        """Wait (with a deadline) until it holds `count`, then check that it holds no more than that."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while await self.bus.waiting(self.spec) < count:
                    await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # anything more would have arrived by now
        assert await self.bus.waiting(self.spec) == count


@pytest.fixture
async def queue(bus: Bus, namespace: str) -> Queue:
    made = Queue(bus, namespace)
    await bus.declare(made.spec)
    return made


def webhooks(pool: asyncpg.Pool, queue: Queue) -> Webhooks:
    return Webhooks(pool, WebhookBindings(queue.bus, queue.spec))


def body(*types: str) -> WebhookCreate:
    return WebhookCreate(url="https://receiver.example/hook", types=list(types))


async def test_events_reach_the_queue_only_while_a_webhook_wants_them(
    migrated_pool: asyncpg.Pool, queue: Queue
) -> None:
    registry = webhooks(migrated_pool, queue)
    await queue.publish("interaction.received", "client.created")
    await queue.holds(0)  # no webhook: no copy of any event

    first = await registry.create(body("interaction.*"), None)
    await queue.publish("interaction.received", "client.created", "agent.state_changed")
    await queue.holds(1)

    second = await registry.create(body("interaction.*", "client.#"), None)
    await registry.delete(first.id, None)  # `interaction.*` stays: the second webhook has it too
    await queue.publish("interaction.received", "client.created", "agent.state_changed")
    await queue.holds(3)

    await registry.delete(second.id, None)
    await queue.publish("interaction.received", "client.created", "agent.state_changed")
    await queue.holds(3)


async def test_a_dispatcher_starting_binds_every_webhooks_patterns_and_drops_the_old_catch_all(
    migrated_pool: asyncpg.Pool, queue: Queue
) -> None:
    registry = webhooks(migrated_pool, queue)
    await registry.create(body("client.created"), None)
    # What an earlier version left: the queue bound to everything, and a broker that lost the bindings since.
    await queue.bus.declare(replace(queue.spec, binding_keys=("#",)))
    await queue.bus.unbind(queue.spec, "client.created")
    await registry.bind_every_pattern()
    await queue.publish("client.created", "interaction.received")
    await queue.holds(1)


async def test_registrations_and_deletions_of_one_pattern_at_once_leave_it_bound_while_a_webhook_has_it(
    migrated_pool: asyncpg.Pool, queue: Queue
) -> None:
    registry = webhooks(migrated_pool, queue)
    for published in range(1, 6):
        leaving = await registry.create(body("reservation.*"), None)
        await asyncio.gather(registry.delete(leaving.id, None), registry.create(body("reservation.*"), None))
        await queue.publish("reservation.created")
        await queue.holds(published)


async def test_deleting_an_integration_deletes_its_webhooks_and_unbinds_the_patterns_nobody_else_has(
    migrated_pool: asyncpg.Pool, queue: Queue
) -> None:
    registry = webhooks(migrated_pool, queue)
    integration = await Integrations(migrated_pool).create(IntegrationCreate(name="ERP"))
    await registry.create(body("client.#", "interaction.*"), integration.id)
    await registry.create(body("interaction.*"), None)  # the admin's, which stays
    await queue.publish("client.created", "interaction.received")
    await queue.holds(2)

    await registry.delete_integration(integration.id)
    await queue.publish("client.created", "interaction.received")
    await queue.holds(3)  # `client.#` unbound with the integration; `interaction.*` still the admin's
    assert [hook.integration_id for hook in await registry.visible_to(None)] == [None]
    assert await Integrations(migrated_pool).by_token(integration.token) is None
    with pytest.raises(NotFound):
        await registry.delete_integration(integration.id)
