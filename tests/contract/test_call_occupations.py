"""Calls that occupy agents survive Redis losing live state: PostgreSQL keeps them (`store.calls`, migration 024)
and the rebuild (`routing.recovery`) occupies each agent again — on a real Redis and on fakeredis, against the
real PostgreSQL. An end that lands while the rebuild runs still frees its agent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
import redis.asyncio as aioredis

from contactcenter.host.embedded import in_process_redis
from contactcenter.live import LiveChanges, Reservation
from contactcenter.live.state import LiveState
from contactcenter.store import InteractionInContext, OccupyingCall
from contactcenter.store.calls import CallOccupations
from contactcenter.store.conversations import Conversations
from contactcenter.store.migrate import migrate
from routing.recovery import LiveStateRecovery
from schema import Interaction
from schema.offers import RevokeReason
from tests.contract.test_live_state import QUEUE, TTL, agent, only_offer, task

FAR = 4_000_000_000_000  # a bound far beyond any test (ms)


@pytest.fixture(params=["redis", "fakeredis"])
async def live(
    request: pytest.FixtureRequest, redis_url: str, redis_cleanup: None, namespace: str
) -> AsyncIterator[LiveState]:
    """Live state Redis has lost: nothing in the test's namespace yet."""
    client = aioredis.from_url(redis_url) if request.param == "redis" else in_process_redis()
    yield LiveState(client, namespace=namespace, reservation_ttl_ms=TTL)
    await client.aclose()


@dataclass
class AnnouncedChanges:
    offers: list[Reservation] = field(default_factory=list)

    async def announce(
        self,
        changes: LiveChanges,
        *,
        revoked_because: RevokeReason = RevokeReason.AGENT_UNAVAILABLE,
        known: InteractionInContext | None = None,
    ) -> None:
        self.offers.extend(changes.offers)

    async def message(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, interaction: Interaction) -> None:
        raise AssertionError("a rebuild tells no agent of a message")


class EndedWhileRead:
    """The calls' record, where `call_sid`'s end comes right after the rebuild read the calls in progress (its
    row deleted, and live state — still empty — freeing nobody), before the rebuild occupies its agent."""

    def __init__(self, occupations: CallOccupations, call_sid: str) -> None:
        self._occupations = occupations
        self._call_sid = call_sid

    async def in_progress(self) -> list[OccupyingCall]:
        calls = await self._occupations.in_progress()
        await self._occupations.end(self._call_sid)
        return calls

    async def still_on(self, call_sids: list[str]) -> set[str]:
        return await self._occupations.still_on(call_sids)


async def test_calls_in_progress_occupy_their_agents_again_after_the_rebuild_and_ended_ones_do_not(
    live: LiveState, pool: asyncpg.Pool
) -> None:
    occupations = CallOccupations(pool)
    ann, bob, cid = agent(), agent(), agent()
    await occupations.occupy("CA1", ann, FAR)
    await occupations.occupy("CA2", ann, FAR)  # Ann's newer call takes the older one's place
    await occupations.occupy("CA3", bob, FAR)
    await occupations.end("CA3")
    await occupations.occupy("CA4", cid, 1_000)  # past its bound: its agent is free
    assert {call.call_sid for call in await occupations.in_progress()} == {"CA2"}

    notices = AnnouncedChanges()
    await LiveStateRecovery(live, Conversations(pool), notices, occupations).check()
    assert notices.offers == []
    for who in (ann, bob, cid):
        await live.set_agent_state(who, "away", [QUEUE], now_ms=1_000)
    assert (await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_100)).offers == []
    first, second = task(), task()
    assert (await live.enqueue(first, now_ms=1_200)).offers == []  # Ann is on CA2
    assert only_offer(await live.set_agent_state(bob, "available", [QUEUE], now_ms=1_300)).agent_id == bob
    assert (await live.release("CA1", now_ms=1_400)).offers == []  # the older call frees nobody
    assert await occupations.still_on(["CA2", "CA4"]) == {"CA2", "CA4"}
    await occupations.end("CA2")  # and the row of CA4, past its bound, goes with it
    assert await occupations.still_on(["CA2", "CA4"]) == set()
    assert (await live.enqueue(second, now_ms=1_500)).offers == []
    assert only_offer(await live.release("CA2", now_ms=1_600)).agent_id == ann


async def test_a_call_that_ends_while_the_rebuild_runs_leaves_its_agent_free(
    live: LiveState, pool: asyncpg.Pool
) -> None:
    occupations = CallOccupations(pool)
    ann, bob = agent(), agent()
    await occupations.occupy("CA1", ann, FAR)
    await occupations.occupy("CA2", bob, FAR)

    notices = AnnouncedChanges()
    await LiveStateRecovery(live, Conversations(pool), notices, EndedWhileRead(occupations, "CA1")).check()
    await live.set_agent_state(bob, "available", [QUEUE], now_ms=1_000)
    assert (await live.enqueue(task(), now_ms=1_100)).offers == []  # Bob is still on CA2
    assert only_offer(await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_200)).agent_id == ann
    assert await occupations.still_on(["CA1", "CA2"]) == {"CA2"}


async def test_024_keeps_the_calls_connected_before_it_that_have_not_ended(pool: asyncpg.Pool) -> None:
    ann, bob, cid = agent(), agent(), agent()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM schema_migrations WHERE version = 24")  # as a database before 024
        await conn.execute("DROP TABLE agent_calls")
        await conn.executemany(
            "INSERT INTO voice_calls (call_sid, from_number, to_number, status, rank, connected_at, agent_id)"
            " VALUES ($1, '+14155550100', '+15005550006', $2, $3, now() - $4 * interval '1 minute', $5)",
            [
                ("CA-older", "in-progress", 2, 3, ann),  # Ann's older call, replaced by her newer one
                ("CA-on", "in-progress", 2, 1, ann),
                ("CA-ended", "completed", 3, 2, bob),
                ("CA-stale", "in-progress", 2, 300, cid),  # connected 5 hours ago: past the longest call
            ],
        )
        await conn.execute(
            "INSERT INTO voice_calls (call_sid, from_number, to_number, status, rank) VALUES"
            " ('CA-waiting', '+14155550101', '+15005550006', 'ringing', 1)"
        )

    assert await migrate(pool) == ["024_calls_occupying_agents.sql"]

    calls = await CallOccupations(pool).in_progress()
    assert [(call.call_sid, call.agent_id) for call in calls] == [("CA-on", ann)]
