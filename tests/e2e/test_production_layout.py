"""Production layout: the API and two routers as separate service instances (own connections each) on the
same RabbitMQ, PostgreSQL and Redis. No interaction is stored twice and no agent is booked twice. A relay process
publishes the events when the routers are told not to."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import aiohttp
import asyncpg
import pytest

from contactcenter.agents.relay import NoticeRelay
from contactcenter.errors import Unavailable
from contactcenter.host.app import Role
from contactcenter.settings import Settings
from tests.conftest import DATABASE_URL
from tests.events_queue import EventsQueue
from tests.running import AgentDesktop, run_service

CLIENTS = 12
AGENTS = 3


async def _work_until(desktop: AgentDesktop, offers: list[tuple[str, str]], done: asyncio.Event) -> None:
    """Accept every offer, then complete it: the agent never holds more than one piece of work at a time."""
    while not done.is_set():
        offer = await desktop.receive("offer", timeout=30)
        reservation = offer["reservation"]
        offers.append((desktop.agent_id, reservation["conversation_id"]))
        await desktop.command({"type": "accept", "reservation_id": reservation["id"]}, "accepted")
        await desktop.command({"type": "complete", "conversation_id": reservation["conversation_id"]}, "completed")
        if len({conversation for _, conversation in offers}) == CLIENTS:
            done.set()


async def _wait_for_stored(settings: Settings, count: int) -> None:
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": settings.database_schema})
    try:
        async with asyncio.timeout(30):
            while await conn.fetchval("SELECT count(*) FROM interactions") < count:
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_two_routers_store_each_interaction_once_and_book_no_agent_twice(service_settings: Settings) -> None:
    async with (
        run_service(service_settings, Role.API) as api,
        run_service(service_settings, Role.ROUTER),
        run_service(service_settings, Role.ROUTER),
    ):
        await api.create_queue("sales", ["sms"])
        desktops = []
        for n in range(AGENTS):
            agent = await api.create_agent(f"agent {n}", ["sales"])
            desktops.append(await api.agent_desktop(agent["token"]))

        # Every client sends two messages, and Twilio retries each one: 4 posts per client.
        posts = []
        for n in range(CLIENTS):
            sender = f"+1415555{n:04d}"
            for m in range(2):
                sid = f"SM{n:016d}{m:016d}"
                posts += [api.post_sms(sender=sender, body=f"message {m}", message_sid=sid)] * 2
        responses = await asyncio.gather(*posts)
        assert {response.status for response in responses} == {200}

        # Both messages of a client land in one conversation only if both are routed before it is completed.
        await _wait_for_stored(service_settings, CLIENTS * 2)
        offers: list[tuple[str, str]] = []
        done = asyncio.Event()
        for desktop in desktops:
            await desktop.command({"type": "state", "state": "available"}, "state")
        workers = [asyncio.create_task(_work_until(d, offers, done)) for d in desktops]
        async with asyncio.timeout(60):
            await done.wait()
        for worker in workers:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

        conversations = [conversation for _, conversation in offers]
        assert len(conversations) == len(set(conversations)) == CLIENTS, "a conversation was offered twice"

        conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service_settings.database_schema})
        try:
            assert await conn.fetchval("SELECT count(*) FROM interactions") == CLIENTS * 2
            assert await conn.fetchval("SELECT count(*) FROM clients") == CLIENTS
            assert await conn.fetchval("SELECT count(DISTINCT conversation_id) FROM interactions") == CLIENTS
        finally:
            await conn.close()
        for desktop in desktops:
            await desktop.close()


async def test_an_agent_whose_first_connection_could_not_be_heard_gets_offers_on_the_next(
    service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway listens for the notices of each agent it holds; when Redis does not confirm that (a
    reconnect storm after a deploy), the desktop is told and the socket closes — and the agent's next
    connection is listened for as a first one, so the routers' offers reach it."""
    hold = NoticeRelay.hold
    refused: list[uuid.UUID] = []

    async def redis_times_out_once(self: NoticeRelay, agent_id: uuid.UUID) -> None:
        if not refused:
            refused.append(agent_id)
            raise Unavailable("Redis did not confirm a subscription within 5.0s")
        await hold(self, agent_id)

    async with run_service(service_settings, Role.API) as api, run_service(service_settings, Role.ROUTER):
        await api.create_queue("sales", ["sms"])
        agent = await api.create_agent("agent", ["sales"])
        monkeypatch.setattr(NoticeRelay, "hold", redis_times_out_once)
        socket = await api.http.ws_connect(f"{api.base_url}/api/v1/agents/ws?token={agent['token']}")
        told = await socket.receive_json(timeout=10)
        assert told["type"] == "error" and told["error"]["code"] == "unavailable", told
        closing = await socket.receive(timeout=10)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == aiohttp.WSCloseCode.TRY_AGAIN_LATER
        assert refused == [uuid.UUID(agent["id"])]

        desktop = await api.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        await api.post_sms(sender="+14155550199", body="is anyone there to hear me?")
        offer = await desktop.receive("offer", timeout=10)
        assert offer["reservation"]["interaction"]["body"] == "is anyone there to hear me?"
        await desktop.close()


async def test_a_relay_process_publishes_the_events_while_the_routers_are_told_not_to(
    service_settings: Settings, namespace: str
) -> None:
    """`--role relay`: the relay in a process of its own, the router (CC_ROUTER_RELAYS=false) without one — every
    event of a contact still reaches a consumer of the exchange, in order, and the router's process holds no relay."""
    consumer = EventsQueue()
    await consumer.open(f"{namespace}.events")
    routing = service_settings.model_copy(update={"router_relays": False})
    try:
        async with (
            run_service(service_settings, Role.API) as api,
            run_service(routing, Role.ROUTER),
            run_service(routing, Role.RELAY),
        ):
            await api.create_queue("sales", ["sms"])
            response = await api.post_sms(sender="+14155550100", body="hello", message_sid="SM" + "1" * 32)
            assert response.status == 200
            events = await consumer.wait_for(
                "interaction.received", "client.created", "conversation.opened", "interaction.routed", timeout=30
            )
        ids = [int(event["id"]) for event in events]
        assert ids == sorted(ids)
    finally:
        await consumer.close()
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service_settings.database_schema})
    try:
        assert await conn.fetchval("SELECT published_up_to FROM events_relay") >= len(events)
    finally:
        await conn.close()


async def test_a_router_told_not_to_relay_and_no_relay_process_leave_the_events_in_the_log(
    service_settings: Settings,
) -> None:
    """The switch is the router's: with CC_ROUTER_RELAYS=false and no relay process, nothing publishes (the
    events wait in the log, as with the broker down); an existing layout's router, not told, relays."""
    routing = service_settings.model_copy(update={"router_relays": False})
    async with run_service(service_settings, Role.API) as api, run_service(routing, Role.ROUTER):
        await api.create_queue("sales", ["sms"])
        response = await api.post_sms(sender="+14155550101", body="hello", message_sid="SM" + "2" * 32)
        assert response.status == 200
        await _wait_for_stored(service_settings, 1)
        conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service_settings.database_schema})
        try:
            assert await conn.fetchval("SELECT count(*) FROM events WHERE id IS NULL") > 0
            async with run_service(service_settings, Role.ROUTER):
                async with asyncio.timeout(30):
                    while await conn.fetchval("SELECT count(*) FROM events WHERE id IS NULL"):
                        await asyncio.sleep(0.05)
        finally:
            await conn.close()
