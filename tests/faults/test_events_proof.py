"""Issue 15's proof: in the middle of a burst of contacts the relay's process is SIGKILLed and RabbitMQ is restarted
(a private node); afterwards a consumer bound to the events exchange holds every event the outbox holds, each
entity's in order, a repeat only under the same id with the same body, and the log (`GET /api/v1/events`, paged
from 0) agrees with both. A webhook receiver on loopback, registered before the burst, has every event too, each
entity's in order, each signed: the killed router was also the webhooks' dispatcher."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from contactcenter.events import outbox
from contactcenter.settings import Settings
from tests.events_queue import EventsQueue, read_log
from tests.faults.accounting import (
    Floor,
    Ledger,
    TwilioClient,
    accepted_again,
    acknowledged_again,
    assert_survived,
    settle,
)
from tests.faults.conftest import faulty
from tests.faults.layout import ServiceProcess, service_environment
from tests.faults.private import PrivateRabbitMQ
from tests.running import ADMIN_TOKEN
from tests.webhook_receivers import Receiver, Receivers, verified
from tests.webhook_receivers import ids_by_entity as webhook_ids_by_entity

PAGE = 200  # small pages: the log is read across many of them


async def outbox_settled(settings: Settings, consumer: EventsQueue, seconds: float = 60.0) -> list[int]:
    """Wait until live state's stream is empty, every outbox row is stamped and published, and the consumer holds
    them all; the outbox's ids in order."""
    assert settings.database_url is not None and settings.redis_url is not None
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(), server_settings={"search_path": settings.database_schema}
    )
    redis = aioredis.from_url(settings.redis_url.get_secret_value())
    try:
        async with asyncio.timeout(seconds):
            while True:
                rows = await conn.fetch("SELECT id FROM events ORDER BY seq")
                ids = [row["id"] for row in rows]
                streamed = await redis.xlen(f"{settings.namespace}:events")
                if (
                    not streamed
                    and all(row["id"] is not None for row in rows)
                    and not await outbox.waiting(conn)
                    and {int(event["id"]) for event in consumer.events()} >= set(ids)
                ):
                    return sorted(ids)
                await asyncio.sleep(0.2)
    finally:
        await redis.aclose()
        await conn.close()


async def webhook_settled(settings: Settings, receiver: Receiver, ids: list[int], seconds: float = 90.0) -> str:
    """Wait until the receiver has acknowledged every event; if it has not by then, where the rest stand."""
    wanted = {str(n) for n in ids}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        # Every event the outbox held; events made after (agents going offline as the test closes) may follow.
        if wanted <= {json.loads(r.body)["id"] for r in receiver.received}:
            return ""
        await asyncio.sleep(0.2)
    lacking = sorted(wanted - {json.loads(r.body)["id"] for r in receiver.received}, key=int)
    assert settings.database_url is not None
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(), server_settings={"search_path": settings.database_schema}
    )
    try:
        states = await conn.fetch(
            "SELECT state, count(*) AS n FROM webhook_deliveries WHERE event_id = any($1::text[]) GROUP BY state",
            lacking,
        )
    finally:
        await conn.close()
    recorded = {row["state"]: row["n"] for row in states}
    return f"{len(lacking)} of {len(wanted)} (first {lacking[:5]}); their deliveries by state: {recorded}"


@pytest.mark.timeout(300)  # a burst, two faults, then thousands of deliveries one at a time: longer than most
async def test_the_relay_killed_and_rabbitmq_restarted_mid_burst_lose_and_reorder_no_event(
    service_settings: Settings, private_rabbitmq: PrivateRabbitMQ
) -> None:
    settings = faulty(service_settings, amqp_url=private_rabbitmq.url)
    environment = service_environment(settings) | {"CC_WEBHOOK_ALLOW_PRIVATE": "true", "CC_WEBHOOK_SCAN_SECONDS": "0.2"}
    # The relay runs in the router role: the first router is killed, its successor relays on.
    api, relay, successor = (ServiceProcess(role, environment) for role in ("api", "router", "router"))
    consumer = EventsQueue()
    receivers = Receivers()
    receiver = await receivers.start()
    ledger = Ledger()
    try:
        await api.start()
        await relay.start()
        await consumer.open(
            f"{settings.namespace}.events", url=private_rabbitmq.url, durable_queue=f"{settings.namespace}.erp"
        )
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{api.base_url}/api/v1/webhooks",
                json={"url": receiver.url, "types": ["#"]},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as response:
                assert response.status == 201, await response.text()
                secret = (await response.json())["secret"]
            floor = Floor(http, api.base_url)
            await floor.staff("sales", agents=4)
            twilio = TwilioClient(http, api.base_url, ledger)
            stop = asyncio.Event()
            traffic = asyncio.create_task(twilio.traffic(stop, senders=4, pause=0.2, budget=90))
            await accepted_again(floor)

            relay.kill()
            published_by_the_first = len(consumer.received)
            await acknowledged_again(ledger)
            await successor.start()
            await accepted_again(floor)

            await private_rabbitmq.stop_app()
            await asyncio.sleep(1.0)
            await private_rabbitmq.start_app()
            await acknowledged_again(ledger, seconds=90)
            await accepted_again(floor, seconds=90)
            stop.set()
            await traffic
            counts = await settle(ledger, floor, settings, seconds=90)
            await floor.close()

            ids = await outbox_settled(settings, consumer)
            log = await read_log(http, api.base_url, limit=PAGE)
            missing = await webhook_settled(settings, receiver, ids)
    finally:
        await receivers.stop()
        await consumer.close()
        for process in (api, relay, successor):
            await process.stop()
    assert_survived(counts, "relay SIGKILL and rabbitmq restart, for the events")
    assert not missing, f"the webhook lacks events: {missing}"
    assert published_by_the_first > 0, "the first relay published nothing before it was killed"

    # Every event the outbox holds, and nothing else: no event came under a second id. Events made after the
    # outbox settled (agents going offline as the test closes) are stamped after its last id: left out here.
    last = ids[-1]
    events = [event for event in consumer.events() if int(event["id"]) <= last]
    assert sorted(int(event["id"]) for event in events) == ids
    # A repeat is the same event: the same id with the same bytes.
    first: dict[str, dict[str, Any]] = {}
    repeats = 0
    for _, event, _ in consumer.received:
        if event["id"] in first:
            repeats += 1
            assert event == first[event["id"]], f"event {event['id']} came again changed"
        first.setdefault(event["id"], event)
    # Each entity's events in id order, as they first came.
    for entity, entity_ids in consumer.ids_by_entity().items():
        assert entity_ids == sorted(entity_ids), f"{entity}'s events came out of order: {entity_ids}"
    # The log agrees with the outbox and the consumer, event for event.
    log = [event for event in log if int(event["id"]) <= last]
    assert [int(event["id"]) for event in log] == ids
    for event in log:
        assert event == first[event["id"]], json.dumps([event, first[event["id"]]])
    # The webhook: every event, each entity's in order, each verified, the bytes the exchange carried.
    for entity, entity_ids in webhook_ids_by_entity(receiver.received).items():
        assert entity_ids == sorted(entity_ids), f"{entity}'s events were delivered out of order: {entity_ids}"
    assert all(verified(secret, r) for r in receiver.received)
    assert all(json.loads(r.body) == first[json.loads(r.body)["id"]] for r in receiver.received)
    print(
        f"EVENTS PROOF: {len(ids)} events, {repeats} repeats, {counts.acknowledged} contacts,"
        f" {len(receiver.received)} webhook deliveries"
    )
