"""Redis loses live state (a private server, flushed or restarted without persistence) while a call is connected
to an agent and another waits in its queue. The rebuild from PostgreSQL (`routing/recovery.py`) puts the call
back on its agent — offered nothing on any channel until the call's final status, which frees it and records the
duration — and the waiting call is offered to the next agent who comes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from contactcenter.settings import Settings
from tests.e2e.test_voice import MENU, VOICE, call, call_events, call_to_queue, put_menu
from tests.e2e.test_voice_busy import complete, offered_the_text, text_waits_unoffered
from tests.faults.conftest import faulty
from tests.faults.private import PrivateRedis
from tests.running import FakeTwilioApi, RunningService, run_service


async def _flush(server: PrivateRedis) -> None:
    client = aioredis.from_url(server.url)
    try:
        await client.flushall()  # the private server only: the shared one serves others' tests
    finally:
        await client.aclose()


async def _restart(server: PrivateRedis) -> None:
    await server.restart()


async def _rebuilt_since(service: RunningService, before: str | None) -> None:
    """Until a rebuild other than `before` made live state whole again."""
    async with asyncio.timeout(20):
        while (await service.services.live.rebuilt()) in (None, before):
            await asyncio.sleep(0.05)


async def _available_again(service: RunningService, agent_id: str) -> None:
    """Until the agent's gateway told the rebuilt live state what the agent last asked to be."""
    async with asyncio.timeout(20):
        while (await service.services.live.agent_status(uuid.UUID(agent_id))).state != "available":
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("lose", [_flush, _restart], ids=["flushed", "restarted"])
async def test_a_connected_call_still_occupies_its_agent_and_a_waiting_call_is_still_offered_after_redis_loss(
    service_settings: Settings,
    private_redis: PrivateRedis,
    fake_twilio: FakeTwilioApi,
    lose: Callable[[PrivateRedis], Awaitable[None]],
) -> None:
    settings = faulty(service_settings, redis_url=private_redis.url, reservation_timeout_seconds=30.0)
    async with run_service(settings) as service:
        texts = await service.create_queue("texts", ["sms"])
        sales = await service.create_queue("sales", ["voice"])
        await put_menu(service, MENU)
        ann = await service.available_agent("Ann", ("sales", "texts"))
        bob = await service.create_agent("Bob", ["sales"])

        # Ann takes the first call, connected, and completes its desktop work: the call alone keeps her busy.
        first = "CA" + uuid.uuid4().hex
        await call_to_queue(service, first, "1")
        offer = await ann.receive("offer")
        await ann.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        await complete(ann, offer["reservation"])
        assert [c["CallSid"] for c in fake_twilio.calls] == [first]
        # A second call waits in the queue: nobody is free for it.
        second = "CA" + uuid.uuid4().hex
        await call_to_queue(service, second, "1")
        async with asyncio.timeout(15):
            while await service.services.live.queue_length(uuid.UUID(sales["id"])) != 1:
                await asyncio.sleep(0.05)

        before = await service.services.live.rebuilt()
        await lose(private_redis)
        await _rebuilt_since(service, before)
        await _available_again(service, ann.agent_id)

        # Ann is available again, yet on her call: neither the waiting call nor a new text reaches her.
        assert await service.services.live.queue_length(uuid.UUID(sales["id"])) == 1
        await text_waits_unoffered(service, texts)
        # Bob comes: the call that waited is his.
        desktop = await service.agent_desktop(bob["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        waiting = await desktop.receive("offer")
        assert waiting["reservation"]["interaction"]["provider_id"] == second
        await desktop.command({"type": "accept", "reservation_id": waiting["reservation"]["id"]}, "accepted")
        assert [c["CallSid"] for c in fake_twilio.calls] == [first, second]
        assert await service.services.live.queue_length(uuid.UUID(texts["id"])) == 1

        # The first call's end frees Ann — the text is hers — and its duration is recorded.
        assert (await call(service, f"{VOICE}/status", first, status="completed", CallDuration="321")).status == 200
        await offered_the_text(ann)
        (ended,) = await call_events(service, "call.ended", first)
        assert ended["data"]["agent_id"] == ann.agent_id and ended["data"]["duration_seconds"] == 321
        duration = await service.services.pool.fetchval(
            "SELECT duration_seconds FROM voice_calls WHERE call_sid = $1", first
        )
        assert duration == 321
        await desktop.close()
        await ann.close()
