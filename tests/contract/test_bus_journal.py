"""Embedded mode's bus keeps production's promise: what its shared queues hold is in PostgreSQL before the publish
returns, and a new process on the same database gets, in order and before anything new, what the last one had
not handled — as a restarted RabbitMQ keeps a quorum queue."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
import pytest

from contactcenter.bus import QueueSpec
from contactcenter.bus.journal import PostgresJournal
from contactcenter.bus.memory import MemoryBus
from contactcenter.errors import Unavailable
from tests.inbox import Inbox

ROUTER = QueueSpec("t.router", "t.interactions", ("interaction.#",), prefetch=4)


async def _journaled_bus(pool: asyncpg.Pool) -> MemoryBus:
    """A bus as one embedded process opens it: journal, then the routers' queue, declared at start-up."""
    bus = MemoryBus(await PostgresJournal.open(pool), publish_timeout=5)
    await bus.declare(ROUTER)
    return bus


async def _publish(bus: MemoryBus, body: bytes) -> None:
    await bus.publish(ROUTER.exchange, "interaction.sms.inbound", body, message_id=uuid.uuid4().hex, mandatory=True)


async def test_what_a_dead_process_had_not_handled_comes_first_in_order_to_the_next(
    unmigrated_pool: asyncpg.Pool,
) -> None:
    dead = await _journaled_bus(unmigrated_pool)
    for n in range(5):
        await _publish(dead, f"m{n}".encode())
    # The process dies: nothing is closed, nothing handled.

    restarted = await _journaled_bus(unmigrated_pool)
    await _publish(restarted, b"new")
    inbox = Inbox()
    subscription = await restarted.subscribe(replace(ROUTER, prefetch=1), inbox)
    await inbox.wait_for(6)
    await subscription.close()
    await restarted.close()
    assert inbox.bodies() == [b"m0", b"m1", b"m2", b"m3", b"m4", b"new"]
    # It may have been in a handler when the process died: the handler is told so.
    assert [d.redelivered for d in inbox.deliveries] == [True] * 5 + [False]


async def test_a_handled_message_is_not_delivered_again_after_a_restart(unmigrated_pool: asyncpg.Pool) -> None:
    first = await _journaled_bus(unmigrated_pool)
    inbox = Inbox()
    subscription = await first.subscribe(ROUTER, inbox)
    await _publish(first, b"handled")
    await inbox.wait_for(1)
    await subscription.close()  # waits for the handler, and its settling in the journal
    await first.close()

    restarted = await _journaled_bus(unmigrated_pool)
    later = Inbox()
    subscription = await restarted.subscribe(ROUTER, later)
    await _publish(restarted, b"marker")
    await later.wait_for(1)
    await subscription.close()
    await restarted.close()
    assert later.bodies() == [b"marker"]


async def test_a_publish_the_journal_cannot_take_is_unavailable(unmigrated_pool: asyncpg.Pool) -> None:
    bus = await _journaled_bus(unmigrated_pool)
    await unmigrated_pool.close()  # the embedded PostgreSQL is gone
    with pytest.raises(Unavailable):
        await _publish(bus, b"not kept")
    await bus.close()
