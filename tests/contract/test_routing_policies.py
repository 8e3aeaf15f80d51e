"""Each routing policy of `routing.policies`, pinned through the adapters that run it: the recording in
PostgreSQL, the Lua scripts on a real Redis and on fakeredis, and `routing.placement` over both."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pytest
import redis.asyncio as aioredis

from contactcenter.agents import Arrival, Placement
from contactcenter.clock import now_ms
from contactcenter.host.embedded import in_process_redis
from contactcenter.identities import Identity
from contactcenter.live import LiveChanges, Reservation, Task
from contactcenter.live.state import LiveState
from contactcenter.store import InteractionInContext
from contactcenter.store.conversations import Conversations
from routing.placement import ContactPlacement
from schema import Channel, IdentityKind, Interaction
from schema.offers import RevokeReason

TTL = 30_000
QUEUE = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
OTHER_QUEUE = uuid.UUID("00000000-0000-4000-8000-0000000000b2")
NUMBER = "+14155550134"


@pytest.fixture(params=["redis", "fakeredis"])
async def live(
    request: pytest.FixtureRequest, redis_url: str, redis_cleanup: None, namespace: str
) -> AsyncIterator[LiveState]:
    client: aioredis.Redis = aioredis.from_url(redis_url) if request.param == "redis" else in_process_redis()
    yield LiveState(client, namespace=namespace, reservation_ttl_ms=TTL)
    await client.aclose()


def _sms(sid: str, sender: str = NUMBER) -> Interaction:
    return Interaction(
        channel=Channel.SMS,
        provider_id=sid,
        from_address=sender,
        sender_kind=IdentityKind.PHONE,
        from_verified=True,
        received_at=datetime.now(UTC),
    )


async def _record(conversations: Conversations, sid: str, sender: str = NUMBER) -> uuid.UUID | None:
    recorded = await conversations.record_inbound(_sms(sid, sender), Identity(IdentityKind.PHONE, sender, True))
    return recorded.queue_id


async def _queue(pool: asyncpg.Pool, name: str, age: str) -> uuid.UUID:
    queue: uuid.UUID = await pool.fetchval(
        "INSERT INTO queues (id, name, channels, created_at)"
        " VALUES (gen_random_uuid(), $1, '{sms}', now() - $2::text::interval) RETURNING id",
        name,
        age,
    )
    return queue


def _offer(changes: LiveChanges) -> Reservation:
    assert len(changes.offers) == 1, changes
    return changes.offers[0]


# policies.QUEUE_FOR_A_CONTACT


async def test_two_queues_serve_sms_the_older_one_gets_the_contact(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    older = await _queue(pool, "zulu", "1 hour")
    await _queue(pool, "alpha", "1 minute")
    assert await _record(conversations, "SM1") == older


async def test_of_queues_made_at_the_same_moment_the_first_by_name_gets_the_contact(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    await pool.execute(
        "INSERT INTO queues (id, name, channels, created_at)"
        " SELECT gen_random_uuid(), name, '{sms}', '2026-01-01Z' FROM unnest(ARRAY['zulu', 'alpha']) AS name"
    )
    first_by_name = await pool.fetchval("SELECT id FROM queues WHERE name = 'alpha'")
    assert await _record(conversations, "SM1") == first_by_name


async def test_a_contact_joins_its_client_s_open_conversation_and_its_queue(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    first = await _queue(pool, "first", "1 minute")
    assert await _record(conversations, "SM1") == first
    await _queue(pool, "older", "1 day")
    assert await _record(conversations, "SM2") == first, "the open conversation keeps its queue"
    assert await _record(conversations, "SM3", "+14155550199") != first, "a new conversation takes the oldest"


async def test_a_contact_moved_out_of_a_closed_conversation_goes_to_the_oldest_queue(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    await _queue(pool, "first", "1 minute")
    recorded = await conversations.record_inbound(_sms("SM1"), Identity(IdentityKind.PHONE, NUMBER, True))
    older = await _queue(pool, "older", "1 day")
    await pool.execute("UPDATE conversations SET state = 'closed'")
    moved = await conversations.rehome_inbound(recorded.interaction_id)
    assert moved is not None and moved.queue_id == older


async def test_a_contact_no_queue_serves_is_stored_and_waits_unrouted(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    assert await _record(conversations, "SM1") is None
    assert await pool.fetchval("SELECT count(*) FROM interactions") == 1


# policies.ORDER_OF_WAITING_WORK


async def test_the_oldest_waiting_work_is_offered_first(live: LiveState) -> None:
    waiting = [Task(uuid.uuid4(), QUEUE, uuid.uuid4()) for _ in range(3)]
    for n, work in enumerate(waiting):
        await live.enqueue(work, now_ms=1_000 + n)
    offered = [
        _offer(await live.set_agent_state(uuid.uuid4(), "available", [QUEUE], now_ms=2_000 + n)).conversation_id
        for n in range(3)
    ]
    assert offered == [work.conversation_id for work in waiting]


async def test_an_agent_of_two_queues_is_offered_the_work_that_waited_longest(live: LiveState) -> None:
    newer, older = Task(uuid.uuid4(), QUEUE, uuid.uuid4()), Task(uuid.uuid4(), OTHER_QUEUE, uuid.uuid4())
    await live.enqueue(older, now_ms=1_000)
    await live.enqueue(newer, now_ms=2_000)
    offer = _offer(await live.set_agent_state(uuid.uuid4(), "available", [QUEUE, OTHER_QUEUE], now_ms=3_000))
    assert offer.conversation_id == older.conversation_id


# policies.AGENT_FOR_WORK


async def test_of_two_available_agents_the_one_idle_longer_gets_the_offer(live: LiveState) -> None:
    idle_longer, idle_shorter = uuid.uuid4(), uuid.uuid4()
    await live.set_agent_state(idle_shorter, "available", [QUEUE], now_ms=2_000)
    await live.set_agent_state(idle_longer, "available", [QUEUE], now_ms=1_000)
    assert _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=3_000)).agent_id == idle_longer


async def test_an_agent_without_room_is_passed_over(live: LiveState) -> None:
    busy, free = uuid.uuid4(), uuid.uuid4()
    await live.set_agent_state(busy, "available", [QUEUE], now_ms=1_000)
    assert _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=2_000)).agent_id == busy
    await live.set_agent_state(free, "available", [QUEUE], now_ms=3_000)
    assert _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=4_000)).agent_id == free


async def test_an_agent_away_is_passed_over(live: LiveState) -> None:
    away, available = uuid.uuid4(), uuid.uuid4()
    await live.set_agent_state(away, "away", [QUEUE], now_ms=1_000)
    await live.set_agent_state(available, "available", [QUEUE], now_ms=2_000)
    assert _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=3_000)).agent_id == available


# policies.REJECTING_AGENT_GOES_TO_THE_BACK


async def test_a_rejecting_agent_goes_to_the_back_of_the_line(live: LiveState) -> None:
    ann, bob, cem = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for n, agent in enumerate((ann, bob, cem)):
        await live.set_agent_state(agent, "available", [QUEUE], now_ms=1_000 + n)
    rejected = _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=2_000))
    assert rejected.agent_id == ann
    again = _offer(await live.reject(ann, rejected.id, now_ms=3_000))
    assert (again.agent_id, again.conversation_id) == (bob, rejected.conversation_id)
    following = [
        _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=4_000 + n)).agent_id for n in range(2)
    ]
    assert following == [cem, ann], "ann was idle longest, but rejected: behind cem now"


# policies.UNANSWERED_OFFER_SETS_THE_AGENT_AWAY


async def test_an_unanswered_offer_sets_its_agent_away_and_takes_back_its_other_offers(live: LiveState) -> None:
    absent, present = uuid.uuid4(), uuid.uuid4()
    await live.set_agent_state(absent, "available", [QUEUE], now_ms=1_000, capacity=2)
    first = _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=2_000))
    second = _offer(await live.enqueue(Task(uuid.uuid4(), QUEUE, uuid.uuid4()), now_ms=2_500))
    await live.set_agent_state(present, "available", [QUEUE], now_ms=3_000, capacity=2)
    changes = await live.expire_reservations(now_ms=2_000 + TTL)
    assert {r.id for r in changes.revoked} == {first.id, second.id}
    assert {(r.agent_id, r.conversation_id) for r in changes.offers} == {
        (present, first.conversation_id),
        (present, second.conversation_id),
    }
    status = await live.agent_status(absent)
    assert (status.state, status.load) == ("away", 0)


# policies.CONTACT_FOR_ITS_HOLDER (routing.placement)


@dataclass
class HeardNotices:
    """The agents' side of placement, heard rather than sent: what each agent was told."""

    messages: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)

    async def announce(
        self,
        changes: LiveChanges,
        *,
        revoked_because: RevokeReason = RevokeReason.AGENT_UNAVAILABLE,
        known: InteractionInContext | None = None,
    ) -> None:
        raise AssertionError("placement leaves the announcing to its caller")

    async def message(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, interaction: Interaction) -> None:
        self.messages.append((agent_id, conversation_id, interaction.provider_id))


async def test_a_contact_in_a_conversation_an_agent_holds_is_told_to_that_agent_not_queued(
    live: LiveState, pool: asyncpg.Pool
) -> None:
    notices, conversations = HeardNotices(), Conversations(pool)
    placement = ContactPlacement(live, conversations, notices)
    agent, conversation = uuid.uuid4(), uuid.uuid4()
    placed = await placement.place(Arrival(uuid.uuid4(), conversation, QUEUE, agent), _sms("SM1"))
    assert placed.placement is Placement.TO_AGENT
    assert notices.messages == [(agent, conversation, "SM1")]
    assert await live.queue_length(QUEUE) == 0


async def test_a_contact_whose_conversation_an_agent_accepted_meanwhile_is_told_to_that_agent(
    live: LiveState, pool: asyncpg.Pool
) -> None:
    """The store read the conversation as waiting; live state knows an agent accepted it since. The agent is
    told of the contact, read from the store."""
    notices, conversations = HeardNotices(), Conversations(pool)
    placement = ContactPlacement(live, conversations, notices)
    queue = await _queue(pool, "service", "1 minute")
    agent = uuid.uuid4()
    await live.set_agent_state(agent, "available", [queue], now_ms=now_ms())
    first = await conversations.record_inbound(_sms("SM1"), Identity(IdentityKind.PHONE, NUMBER, True))
    offered = await placement.place(Arrival(first.interaction_id, first.conversation_id, queue, None))
    assert offered.placement is Placement.QUEUED and notices.messages == []
    await live.accept(agent, _offer(offered.changes).id, now_ms=now_ms())

    second = await conversations.record_inbound(_sms("SM2"), Identity(IdentityKind.PHONE, NUMBER, True))
    assert (second.conversation_id, second.agent_id) == (first.conversation_id, None), "read as waiting"
    told = await placement.place(Arrival(second.interaction_id, second.conversation_id, queue, None))
    assert told.placement is Placement.TO_AGENT
    assert notices.messages == [(agent, first.conversation_id, "SM2")]


async def test_a_contact_that_is_no_news_reaches_its_holder_silently(live: LiveState, pool: asyncpg.Pool) -> None:
    notices = HeardNotices()
    placement = ContactPlacement(live, Conversations(pool), notices)
    arrival = Arrival(uuid.uuid4(), uuid.uuid4(), QUEUE, uuid.uuid4())
    placed = await placement.place(arrival, _sms("SM1"), tell_holder=False)
    assert (placed.placement, notices.messages) == (Placement.TO_AGENT, [])


async def test_a_contact_no_queue_serves_is_left_unrouted(live: LiveState, pool: asyncpg.Pool) -> None:
    notices = HeardNotices()
    placement = ContactPlacement(live, Conversations(pool), notices)
    placed = await placement.place(Arrival(uuid.uuid4(), uuid.uuid4(), None, None), _sms("SM1"))
    assert (placed.placement, placed.changes, notices.messages) == (Placement.UNROUTED, LiveChanges(), [])
