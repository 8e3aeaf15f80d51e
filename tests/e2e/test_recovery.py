"""Services restart under us. Redis may be lost (it keeps nothing on disk here): live state is rebuilt from
PostgreSQL, so queued contacts are still offered, accepted ones stay with their agents, and connected agents
keep their state. PostgreSQL may drop every connection: the pool heals and nothing is lost."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import redis.asyncio as aioredis

from contactcenter.settings import Settings
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.running import run_service


async def _lose_live_state(namespace: str) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=500)]
        assert keys, "there was live state to lose"
        await client.delete(*keys)
    finally:
        await client.aclose()


async def test_a_queued_contact_is_still_offered_after_redis_lost_live_state(service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"live_check_seconds": 0.1})
    async with run_service(settings) as service:
        await service.create_queue("sales", ["sms"])
        agent = await service.create_agent("Ann", ["sales"])
        assert (await service.post_sms(sender="+14155550101", body="still there?")).status == 200
        # Routed and waiting in the queue before Redis goes.
        queue_id = await service.services.pool.fetchval("SELECT id FROM queues")
        async with asyncio.timeout(10):
            while not await service.services.live.queue_length(queue_id):
                await asyncio.sleep(0.02)
        await _lose_live_state(settings.namespace)

        desktop = await service.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        offer = await desktop.receive("offer")
        assert offer["reservation"]["interaction"]["body"] == "still there?"
        await desktop.close()


async def test_accepted_work_and_agent_states_survive_redis_losing_live_state(service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"live_check_seconds": 0.1})
    async with run_service(settings) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        await service.post_sms(sender="+14155550101", body="first")
        first = await desktop.receive("offer")
        await desktop.command({"type": "accept", "reservation_id": first["reservation"]["id"]}, "accepted")

        await _lose_live_state(settings.namespace)
        await service.post_sms(sender="+14155550102", body="second")
        # Rebuilt: the accepted conversation is Ann's again, and Ann is available again (busy, capacity 1).
        live, agent_id = service.services.live, uuid.UUID(desktop.agent_id)
        async with asyncio.timeout(10):
            while (await live.agent_status(agent_id)).state != "available":
                await asyncio.sleep(0.02)
        assert (await live.agent_status(agent_id)).load == 1
        # The second client waits until Ann completes the first conversation.
        conversation_id = first["reservation"]["conversation_id"]
        await desktop.command({"type": "complete", "conversation_id": conversation_id}, "completed")
        second = await desktop.receive("offer")
        assert second["reservation"]["interaction"]["body"] == "second"
        await desktop.close()


async def test_connections_cut_by_postgresql_heal_and_no_contact_is_lost(service_settings: Settings) -> None:
    """What a PostgreSQL restart does to a pool: every connection it holds is gone at once."""
    async with run_service(service_settings) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()

        admin = await asyncpg.connect(DATABASE_URL)
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                f"contactcenter:{service_settings.database_schema}",
            )
        finally:
            await admin.close()
        assert cut > 0

        assert (await service.post_sms(sender="+14155550101", body="after the cut")).status == 200
        offer = await desktop.receive("offer")
        assert offer["reservation"]["interaction"]["body"] == "after the cut"
        url = f"{service.base_url}/api/v1/clients/lookup"
        async with asyncio.timeout(10):
            while True:
                async with service.http.get(
                    url, params={"phone": "+14155550101"}, headers=service.admin_headers()
                ) as response:
                    assert response.status in (200, 503), await response.text()
                    if response.status == 200:
                        break
        await desktop.close()
