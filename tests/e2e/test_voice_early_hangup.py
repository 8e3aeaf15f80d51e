"""A caller who hangs up before the router has recorded the call, on the real PostgreSQL, Redis and RabbitMQ:
Twilio's status callback may come while the call is still on the bus, or while a router is recording it. In
either order the call is recorded as abandoned, with its events once, and no agent is offered a call nobody is
on — also when the process that took the status is gone before the router reads the call."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg

from contactcenter.host.app import Role
from contactcenter.settings import Settings
from tests.e2e.test_events import read_log
from tests.running import AgentDesktop, RunningService, run_service

VOICE = "/channels/twilio/voice"
# Which backend waits on an advisory lock of a bigint key (PostgreSQL shows it as two 32-bit halves).
WAITING_ON_LOCK = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND NOT granted
  AND classid::bigint = (hashtextextended($1, 0) >> 32) & 4294967295
  AND objid::bigint = hashtextextended($1, 0) & 4294967295
"""
STORED_CALL = """
SELECT v.id AS conversation_id, v.state, v.agent_id, x.id AS interaction_id
FROM interactions x JOIN conversations v ON v.id = x.conversation_id
WHERE x.channel = 'voice' AND x.provider_id = $1
"""


def a_caller() -> str:
    """A number of this test alone: the identity's advisory lock is the whole database's, shared with other tests."""
    return f"+1415{random.randrange(2_000_000, 9_999_999)}"


async def enqueued_call(service: RunningService, call_sid: str, caller: str) -> None:
    """A call to a number without a menu: published to the routers, answered with `<Enqueue>`."""
    answer = await service.post_twilio(VOICE, service.call_form(call_sid, caller))
    assert answer.status == 200 and "<Enqueue" in await answer.text()


async def hung_up(service: RunningService, call_sid: str, caller: str) -> None:
    form = service.call_form(call_sid, caller, status="completed", CallDuration="7")
    answer = await service.post_twilio(f"{VOICE}/status", form)
    assert answer.status == 200


async def stored_call(pool: asyncpg.Pool, call_sid: str) -> asyncpg.Record:
    async with asyncio.timeout(20):
        while (row := await pool.fetchrow(STORED_CALL, call_sid)) is None:
            await asyncio.sleep(0.05)
    return row


async def events_of(service: RunningService, kind: str, subject: str) -> list[dict[str, Any]]:
    return [
        event
        for event in await read_log(service, limit=1000)
        if event["type"] == f"org.contactcenter.{kind}" and event["subject"] == subject
    ]


async def once(service: RunningService, kind: str, subject: str) -> dict[str, Any]:
    """The one event of `kind` about `subject`, once the relay has it."""
    async with asyncio.timeout(15):
        while not (events := await events_of(service, kind, subject)):
            await asyncio.sleep(0.05)
    assert len(events) == 1, events
    return events[0]


async def assert_abandoned_and_offered_to_nobody(service: RunningService, desktop: AgentDesktop, call_sid: str) -> None:
    """The call is on the caller's card, in a conversation closed as abandoned, its events written once; the
    agent's next offer is the next caller's call, not this one."""
    pool = service.services.pool
    call = await stored_call(pool, call_sid)
    assert (call["state"], call["agent_id"]) == ("closed", None)
    conversation_id, interaction_id = str(call["conversation_id"]), str(call["interaction_id"])
    abandoned = await once(service, "call.abandoned", call_sid)
    assert abandoned["data"]["waited_seconds"] >= 0
    await once(service, "call.ended", call_sid)
    closed = await once(service, "conversation.closed", conversation_id)
    assert closed["data"]["reason"] == "abandoned" and closed["data"]["agent_id"] is None
    given_up = await once(service, "interaction.abandoned", interaction_id)
    assert given_up["data"]["conversation_id"] == conversation_id
    assert await service.services.redis.exists(f"{service.settings.namespace}:task:{conversation_id}") == 0

    other = "CA" + uuid.uuid4().hex
    await enqueued_call(service, other, a_caller())
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["provider_id"] == other
    # Nothing more about the abandoned call came meanwhile.
    for kind, subject in (("conversation.closed", conversation_id), ("interaction.abandoned", interaction_id)):
        assert len(await events_of(service, kind, subject)) == 1
    assert not await events_of(service, "interaction.routed", interaction_id)


async def test_a_hang_up_before_any_router_read_the_call_is_kept_across_a_restart_and_never_offered(
    service_settings: Settings,
) -> None:
    """The status comes while the call waits on the bus (no router runs), and the process that took it is gone
    before a router reads the call: PostgreSQL kept the abandon, and the recording finds it."""
    sid, caller = "CA" + uuid.uuid4().hex, a_caller()
    async with run_service(service_settings, Role.API) as api:
        await api.create_queue("sales", ["voice"])
        await enqueued_call(api, sid, caller)
        await hung_up(api, sid, caller)

    async with run_service(service_settings) as service:
        desktop = await service.available_agent("Ann", ("sales",))
        await assert_abandoned_and_offered_to_nobody(service, desktop, sid)
        await desktop.close()


async def test_a_hang_up_while_the_router_records_the_call_is_never_offered(service: RunningService) -> None:
    """The router has started recording the call (it waits on the caller's identity, held here) when the status
    comes: the status is answered at once, and the recording that follows finds the abandon."""
    await service.create_queue("sales", ["voice"])
    desktop = await service.available_agent("Ann", ("sales",))
    sid, caller = "CA" + uuid.uuid4().hex, a_caller()
    pool = service.services.pool
    identity_lock = f"phone:{caller}"
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", identity_lock)
        await enqueued_call(service, sid, caller)
        async with asyncio.timeout(20):
            while not await pool.fetchval(WAITING_ON_LOCK, identity_lock):
                await asyncio.sleep(0.02)
        await hung_up(service, sid, caller)
    await assert_abandoned_and_offered_to_nobody(service, desktop, sid)
    await desktop.close()
