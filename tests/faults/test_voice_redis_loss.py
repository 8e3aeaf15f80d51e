"""Redis loses live state (a private server, flushed or restarted without persistence) while a call is connected
to an agent and another waits in its queue. The rebuild from PostgreSQL (`routing/recovery.py`) puts the call
back on its agent — offered nothing on any channel until the call's final status, which frees it and records the
duration — and the waiting call is offered to the next agent who comes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from contactcenter.live.state import LiveState
from contactcenter.settings import Settings
from tests.e2e.test_voice import MENU, VOICE, call, call_events, call_to_queue, put_menu
from tests.e2e.test_voice_busy import TEXTER, complete, offered_the_text
from tests.faults.conftest import faulty
from tests.faults.private import PrivateRedis
from tests.faults.test_redis_loss import _flush
from tests.running import AgentDesktop, FakeTwilioApi, RunningService, run_service


async def _restart(server: PrivateRedis) -> None:
    await server.restart()


@contextlib.asynccontextmanager
async def _watching(server: PrivateRedis, settings: Settings) -> AsyncIterator[LiveState]:
    """Live state as the test reads it, on connections of its own opened after the loss (the service's pool may
    hold connections the restart broke, which fail once on their next use)."""
    client = aioredis.from_url(server.url)
    try:
        yield LiveState(client, namespace=settings.namespace, reservation_ttl_ms=1_000)
    finally:
        await client.aclose()


async def _rebuilt_since(live: LiveState, before: str | None) -> None:
    """Until a rebuild other than `before` made live state whole again."""
    async with asyncio.timeout(20):
        while (await live.rebuilt()) in (None, before):
            await asyncio.sleep(0.05)


async def _available_again(live: LiveState, agent_id: str) -> None:
    """Until the agent's gateway told the rebuilt live state what the agent last asked to be."""
    async with asyncio.timeout(20):
        while (await live.agent_status(uuid.UUID(agent_id))).state != "available":
            await asyncio.sleep(0.05)


async def _waits(live: LiveState, queue: dict[str, Any], count: int = 1) -> None:
    async with asyncio.timeout(15):
        while await live.queue_length(uuid.UUID(queue["id"])) != count:
            await asyncio.sleep(0.05)


async def _as_a_desktop_does(desktop: AgentDesktop, command: dict[str, Any], answer: str) -> dict[str, Any]:
    """Send the command again while the service answers `unavailable` (a Redis connection the restart broke,
    found on its first use): what the contract tells a desktop to do."""
    async with asyncio.timeout(20):
        while True:
            await desktop.send(command)
            frame = await desktop.receive_any()
            if frame["type"] == answer:
                return frame
            assert frame["type"] == "error" and frame["error"]["code"] == "unavailable", frame


async def _status_as_twilio_does(service: RunningService, call_sid: str, **more: str) -> None:
    """Post the call's status callback again while the service answers 503, as Twilio retries."""
    async with asyncio.timeout(20):
        while (answer := await call(service, f"{VOICE}/status", call_sid, **more)).status != 200:
            assert answer.status == 503, answer.status


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
        async with _watching(private_redis, settings) as live:
            await _rebuilt_since(live, before)
            await _available_again(live, ann.agent_id)
            # Ann is available again, yet on her call: neither the waiting call nor a new text reaches her.
            assert await live.queue_length(uuid.UUID(sales["id"])) == 1
            assert (await service.post_sms(sender=TEXTER, body="Where is my order?")).status == 200
            await _waits(live, texts)
        # Bob comes: the call that waited is his.
        desktop = await service.agent_desktop(bob["token"])
        await _as_a_desktop_does(desktop, {"type": "state", "state": "available"}, "state")
        waiting = await desktop.receive("offer")
        assert waiting["reservation"]["interaction"]["provider_id"] == second
        await _as_a_desktop_does(
            desktop, {"type": "accept", "reservation_id": waiting["reservation"]["id"]}, "accepted"
        )
        assert [c["CallSid"] for c in fake_twilio.calls] == [first, second]
        async with _watching(private_redis, settings) as live:
            assert await live.queue_length(uuid.UUID(texts["id"])) == 1

        # The first call's end frees Ann — the text is hers — and its duration is recorded.
        await _status_as_twilio_does(service, first, status="completed", CallDuration="321")
        await offered_the_text(ann)
        (ended,) = await call_events(service, "call.ended", first)
        assert ended["data"]["agent_id"] == ann.agent_id and ended["data"]["duration_seconds"] == 321
        duration = await service.services.pool.fetchval(
            "SELECT duration_seconds FROM voice_calls WHERE call_sid = $1", first
        )
        assert duration == 321
        await desktop.close()
        await ann.close()
