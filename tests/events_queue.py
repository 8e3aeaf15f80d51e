"""A consumer of the events exchange, as an integrator binds one: what tests of the events read."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aio_pika
import aiohttp

from schema.events import TYPE_PREFIX
from tests.conftest import AMQP_URL
from tests.running import ADMIN_TOKEN


async def read_log(http: aiohttp.ClientSession, base_url: str, *, limit: int) -> list[dict[str, Any]]:
    """The whole event log, page by page from 0, as a consumer catching up reads it."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        async with http.get(
            f"{base_url}/api/v1/events",
            params={"after": str(after), "limit": str(limit)},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        events.extend(page["events"])
        if page["next_after"] is None:
            return events
        after = page["next_after"]


class EventsQueue:
    """A consumer of everything on the events exchange, as an integrator binds one."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any], aio_pika.abc.AbstractIncomingMessage]] = []
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def open(self, exchange_name: str, *, url: str = AMQP_URL, durable_queue: str | None = None) -> None:
        """Bind a private queue, gone with the connection; or with `durable_queue`, a durable queue of that name on
        a connection that reconnects by itself, acknowledged once taken: it outlives a broker's restart."""
        if durable_queue is None:
            self._connection = await aio_pika.connect(url)
        else:
            self._connection = await aio_pika.connect_robust(url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        if durable_queue is None:
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        else:
            queue = await channel.declare_queue(durable_queue, durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self._take, no_ack=durable_queue is None)

    async def _take(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.received.append((message.routing_key or "", json.loads(message.body), message))
        if not message.processed:  # after a reconnect the ack fails, and the broker sends it again: a repeat
            with contextlib.suppress(*aio_pika.exceptions.CONNECTION_EXCEPTIONS):
                await message.ack()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def events(self) -> list[dict[str, Any]]:
        """Each event once (a repeat carries the same id), in the order it first came."""
        seen: dict[str, dict[str, Any]] = {}
        for _, event, _ in self.received:
            seen.setdefault(event["id"], event)
        return list(seen.values())

    async def wait_for(self, *types: str, timeout: float = 15.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while not set(types) <= {event["type"].removeprefix(TYPE_PREFIX) for event in self.events()}:
                await asyncio.sleep(0.02)
        return self.events()

    async def wait_for_event(self, type_: str, timeout: float = 15.0, **data: object) -> list[dict[str, Any]]:
        """Wait for one event of this type whose data holds these values (e.g. an agent's `state="offline"`)."""
        async with asyncio.timeout(timeout):
            while not any(
                event["type"].removeprefix(TYPE_PREFIX) == type_
                and all(event["data"].get(key) == value for key, value in data.items())
                for event in self.events()
            ):
                await asyncio.sleep(0.02)
        return self.events()

    def ids_by_entity(self) -> dict[str, list[int]]:
        """Each entity's event ids in the order they first came (a repeat is a message seen before)."""
        entities: dict[str, list[int]] = {}
        for event in self.events():
            entities.setdefault(event["partitionkey"], []).append(int(event["id"]))
        return entities

    async def wait_for_count(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.events()) < count:
                await asyncio.sleep(0.02)
        return self.events()
