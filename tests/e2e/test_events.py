"""Events for other systems on the real services: an SMS and an agent's work come out on the events exchange as
CloudEvents, each entity's in order, and the event log (`GET /api/v1/events`) agrees."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from contactcenter.events import outbox
from contactcenter.events.asyncapi import asyncapi_document
from contactcenter.settings import Settings
from schema.events import BY_NAME, TYPE_PREFIX
from tests.conftest import AMQP_URL
from tests.events_queue import EventsQueue
from tests.events_queue import read_log as events_log
from tests.running import RunningService, run_service

SENDER = "+14155550134"


@pytest.fixture
async def events_queue(namespace: str) -> AsyncIterator[EventsQueue]:
    consumer = EventsQueue()
    await consumer.open(f"{namespace}.events")
    yield consumer
    await consumer.close()


def by_entity(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    entities: dict[str, list[str]] = {}
    for event in events:
        entities.setdefault(event["partitionkey"], []).append(event["type"].removeprefix(TYPE_PREFIX))
    return entities


async def read_log(service: RunningService, *, limit: int) -> list[dict[str, Any]]:
    return await events_log(service.http, service.base_url, limit=limit)


async def test_an_sms_and_the_agents_work_come_out_as_events_in_per_entity_order_and_the_log_agrees(
    service: RunningService, events_queue: EventsQueue
) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    assert (await service.post_sms(sender=SENDER, body="Is my car ready?")).status == 200
    offer = await desktop.receive("offer")
    reservation = offer["reservation"]
    await desktop.command({"type": "accept", "reservation_id": reservation["id"]}, "accepted")
    conversation = reservation["conversation_id"]
    await desktop.command({"type": "reply", "conversation_id": conversation, "text": "Yes, since noon"}, "replied")
    await desktop.command({"type": "complete", "conversation_id": conversation}, "completed")
    await desktop.close()

    await events_queue.wait_for("conversation.closed", "interaction.completed")
    # The socket's close sets the agent offline after the test's last command: its event is the run's last, and
    # the log read below must not find one the queue had not yet received.
    events = await events_queue.wait_for_event("agent.state_changed", agent_id=desktop.agent_id, state="offline")
    interaction, client = reservation["interaction"]["id"], offer["card"]["client"]["id"]
    entities = by_entity(events)
    assert entities[f"interaction:{interaction}"] == [
        "interaction.received",
        "interaction.routed",
        "interaction.offered",
        "interaction.answered",
        "interaction.completed",
    ]
    assert entities[f"client:{client}"] == ["client.created", "identity.added"]
    assert entities[f"conversation:{conversation}"] == ["conversation.opened", "message.sent", "conversation.closed"]
    assert entities[f"reservation:{reservation['id']}"] == ["reservation.created", "reservation.accepted"]
    assert entities[f"agent:{desktop.agent_id}"][0] == "agent.state_changed"

    # Across entities, what caused what comes first: the recording's events (one transaction, in this order),
    # then the offer and its answer, which live state made after the recording committed.
    ids = {event["type"].removeprefix(TYPE_PREFIX): int(event["id"]) for event in events}
    story = [
        "interaction.received",
        "client.created",
        "identity.added",
        "conversation.opened",
        "reservation.created",
        "interaction.offered",
        "reservation.accepted",
        "interaction.answered",
    ]
    assert [ids[name] for name in story] == sorted(ids[name] for name in story)
    for key, event in ((e["type"].removeprefix(TYPE_PREFIX), e) for e in events):
        assert event["specversion"] == "1.0" and event["source"] == "/contactcenter"
        assert event["sequence"] == event["id"].zfill(20)
        assert event["dataschema"] == BY_NAME[key].dataschema
        BY_NAME[key].data.model_validate(event["data"])  # each type's data is its model
    identity = next(e for e in events if e["type"] == "org.contactcenter.identity.added")
    assert identity["data"] == {"client_id": client, "kind": "phone", "value": SENDER, "verified": True}
    for routing_key, event, message in events_queue.received:
        assert routing_key == event["type"].removeprefix(TYPE_PREFIX)
        assert message.message_id == event["id"]
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/cloudevents+json"

    logged = await read_log(service, limit=3)
    assert [(e["id"], e["type"]) for e in logged] == sorted(
        ((e["id"], e["type"]) for e in events), key=lambda pair: int(pair[0])
    )
    assert logged == sorted(events, key=lambda e: int(e["id"]))


@pytest.mark.parametrize(
    ("query", "field"),
    [("after=-1", "after"), ("after=x", "after"), ("limit=0", "limit"), ("limit=1001", "limit")],
)
async def test_a_page_of_the_log_asked_for_out_of_bounds_is_a_400_naming_the_parameter(
    service: RunningService, query: str, field: str
) -> None:
    async with service.http.get(
        f"{service.base_url}/api/v1/events?{query}", headers=service.admin_headers()
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == field


async def test_the_log_is_the_admins_and_the_integrations_to_read(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    integration = await service.create_integration("erp")
    async with service.http.get(f"{service.base_url}/api/v1/events") as response:
        assert response.status == 401
    async with service.http.get(
        f"{service.base_url}/api/v1/events", headers={"Authorization": f"Bearer {agent['token']}"}
    ) as response:
        assert response.status == 403
    async with service.http.get(
        f"{service.base_url}/api/v1/events", headers={"Authorization": f"Bearer {integration['token']}"}
    ) as response:
        assert response.status == 200
        assert "events" in await response.json()


async def test_the_asyncapi_document_is_served_for_the_services_own_exchanges(service: RunningService) -> None:
    async with service.http.get(f"{service.base_url}/api/v1/asyncapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document == asyncapi_document(service.settings.namespace)
    assert document["channels"]["events"]["address"] == f"{service.settings.namespace}.events"


def documented_consumer() -> str:
    """The aio-pika consumer `docs/events.md` shows, as a reader would copy it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


async def test_the_consumer_in_the_catalogue_receives_an_sms_s_events(
    service: RunningService, tmp_path: Path, namespace: str
) -> None:
    exchange, queue_name = f"{namespace}.events", f"{namespace}.doc-consumer"
    connection = await aio_pika.connect(AMQP_URL)
    try:
        # Bound before any event is published, as the consumer binds it: it then reads them whenever it comes up.
        channel = await connection.channel()
        events = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(queue_name, durable=True)
        await queue.bind(events, routing_key="#")
        script = tmp_path / "consumer.py"
        script.write_text(documented_consumer(), encoding="utf-8")
        consumer = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            env={**os.environ, "CC_AMQP_URL": AMQP_URL, "CC_EVENTS_EXCHANGE": exchange, "CC_EVENTS_QUEUE": queue_name},
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            await service.create_queue("sales", ["sms"])
            assert (await service.post_sms(sender=SENDER, body="hello")).status == 200
            printed: list[str] = []
            assert consumer.stdout is not None
            async with asyncio.timeout(20):
                while not any("org.contactcenter.conversation.opened" in line for line in printed):
                    printed.append((await consumer.stdout.readline()).decode())
            assert printed[0].split()[1] == "org.contactcenter.interaction.received"
        finally:
            consumer.terminate()
            await consumer.wait()
    finally:
        channel = await connection.channel()
        await channel.queue_delete(queue_name, if_unused=False, if_empty=False)
        await connection.close()


async def test_a_service_stopped_in_a_burst_of_contacts_and_started_again_publishes_every_event_in_order(
    service_settings: Settings, events_queue: EventsQueue
) -> None:
    async with run_service(service_settings) as first:
        await first.create_queue("sales", ["sms"])
        responses = await asyncio.gather(*(first.post_sms(sender=f"+1415555{n:04d}", body="burst") for n in range(30)))
        assert all(response.status == 200 for response in responses)
    # Whatever the first did not publish (or publish and mark) before it stopped, the next does.
    async with run_service(service_settings) as second:
        await second.post_sms(sender="+14155550999", body="after the restart")
        async with asyncio.timeout(20):
            while True:
                stored = await second.services.pool.fetch("SELECT id FROM events ORDER BY id")
                # Each contact's four from PostgreSQL and its interaction.routed from live state, all published.
                if len(stored) == 31 * 5 and not await outbox.waiting(second.services.pool):
                    break
                await asyncio.sleep(0.05)
        events = await events_queue.wait_for_count(len(stored))
        assert sorted(int(event["id"]) for event in events) == [row["id"] for row in stored]
        for ids in events_queue.ids_by_entity().values():
            assert ids == sorted(ids)
        assert [e["id"] for e in await read_log(second, limit=1000)] == [str(row["id"]) for row in stored]
