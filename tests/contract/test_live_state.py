"""The live-state contract: the same Lua scripts on a real Redis and on fakeredis (embedded mode).
Time is passed in, so nothing here sleeps."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest
import redis.asyncio as aioredis

from contactcenter.errors import Conflict, NotFound
from contactcenter.host.embedded import in_process_redis
from contactcenter.live import AgentStateMoved, Enqueued, LiveChanges, Reservation, Task
from contactcenter.live.state import LiveState

TTL = 30_000
QUEUE = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
OTHER_QUEUE = uuid.UUID("00000000-0000-4000-8000-0000000000a2")


@pytest.fixture(params=["redis", "fakeredis"])
async def redis_client(
    request: pytest.FixtureRequest, redis_url: str, redis_cleanup: None
) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url) if request.param == "redis" else in_process_redis()
    yield client
    await client.aclose()


@pytest.fixture
def live(redis_client: aioredis.Redis, namespace: str) -> LiveState:
    return LiveState(redis_client, namespace=namespace, reservation_ttl_ms=TTL)


def task(queue: uuid.UUID = QUEUE, priority: int = 0) -> Task:
    return Task(uuid.uuid4(), queue, uuid.uuid4(), priority)


def agent() -> uuid.UUID:
    return uuid.uuid4()


def only_offer(changes: LiveChanges) -> Reservation:
    assert len(changes.offers) == 1, changes
    return changes.offers[0]


async def test_queued_work_goes_to_the_longest_idle_available_agent(live: LiveState) -> None:
    early, late = agent(), agent()
    await live.set_agent_state(early, "available", [QUEUE], now_ms=1_000)
    await live.set_agent_state(late, "available", [QUEUE], now_ms=2_000)
    work = task()
    offer = only_offer(await live.enqueue(work, now_ms=3_000))
    assert (offer.agent_id, offer.conversation_id, offer.interaction_id) == (
        early,
        work.conversation_id,
        work.interaction_id,
    )
    assert offer.expires_at_ms == 3_000 + TTL


async def test_work_waits_until_an_agent_becomes_available(live: LiveState) -> None:
    work = task()
    assert await live.enqueue(work, now_ms=1_000) == Enqueued()
    assert await live.queue_length(QUEUE) == 1
    ann = agent()
    offer = only_offer(await live.set_agent_state(ann, "available", [QUEUE], now_ms=2_000))
    assert (offer.agent_id, offer.conversation_id) == (ann, work.conversation_id)
    assert await live.queue_length(QUEUE) == 0


async def test_the_same_conversation_is_queued_once(live: LiveState) -> None:
    work = task()
    await live.enqueue(work, now_ms=1_000)
    await live.enqueue(work, now_ms=1_001)
    assert await live.queue_length(QUEUE) == 1
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=2_000)
    # Reserved now: enqueueing it again (a redelivery) neither queues nor offers it twice.
    assert await live.enqueue(work, now_ms=2_001) == Enqueued()
    assert await live.queue_length(QUEUE) == 0


async def test_a_redelivery_offers_a_pending_reservation_again_and_changes_nothing(live: LiveState) -> None:
    """The attempt that reserved an agent may have failed before telling it: a redelivery hears of the same
    reservation again. Work still queued or already accepted has nothing to offer again."""
    ann, work, waiting = agent(), task(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    first = only_offer(await live.enqueue(work, now_ms=2_000))
    assert only_offer(await live.enqueue(work, now_ms=2_500, offer_again=True)) == first
    assert await live.enqueue(work, now_ms=2_600) == Enqueued()
    assert await live.enqueue(waiting, now_ms=3_000) == Enqueued()
    assert await live.enqueue(waiting, now_ms=3_001, offer_again=True) == Enqueued()
    assert await live.queue_length(QUEUE) == 1
    await live.accept(ann, first.id, now_ms=3_100)
    # Accepted: nothing to offer again; the answer names the agent who holds it.
    assert await live.enqueue(work, now_ms=3_200, offer_again=True) == Enqueued(held_by=ann)
    assert await live.queue_length(QUEUE) == 1


async def test_a_redelivery_of_work_an_agent_completed_meanwhile_makes_no_new_task(live: LiveState) -> None:
    """A router read the conversation as waiting just before its agent accepted and completed it (a redelivery
    racing the agent): the contact is not queued again, or a second agent would be offered it."""
    ann, work = agent(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    first = only_offer(await live.enqueue(work, now_ms=2_000))
    await live.accept(ann, first.id, now_ms=2_100)
    await live.complete(ann, work.conversation_id, now_ms=2_200)
    bob = agent()
    await live.set_agent_state(bob, "available", [QUEUE], now_ms=2_300)
    assert await live.enqueue(work, now_ms=2_400, offer_again=True) == Enqueued()
    assert await live.queue_length(QUEUE) == 0
    # A contact its agent could not work on (closed before the accept was recorded) goes on to be queued anew.
    unworked = task()
    offer = only_offer(await live.enqueue(unworked, now_ms=2_500))
    await live.accept(offer.agent_id, offer.id, now_ms=2_600)
    await live.complete(offer.agent_id, unworked.conversation_id, now_ms=2_700, worked=False)
    moved = Task(uuid.uuid4(), QUEUE, unworked.interaction_id)
    assert only_offer(await live.enqueue(moved, now_ms=2_800)).interaction_id == unworked.interaction_id


async def test_an_agent_of_capacity_one_holds_one_reservation(live: LiveState) -> None:
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    only_offer(await live.enqueue(task(), now_ms=2_000))
    assert await live.enqueue(task(), now_ms=2_001) == Enqueued()
    status = await live.agent_status(ann)
    assert (status.state, status.load, status.capacity) == ("available", 1, 1)


async def test_an_agent_of_capacity_two_takes_two(live: LiveState) -> None:
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000, capacity=2)
    for n in range(3):
        await live.enqueue(task(), now_ms=2_000 + n)
    assert (await live.agent_status(ann)).load == 2
    assert await live.queue_length(QUEUE) == 1


async def test_work_leaves_by_priority_then_arrival(live: LiveState) -> None:
    first, urgent, second = task(), task(priority=5), task()
    await live.enqueue(first, now_ms=1_000)
    await live.enqueue(second, now_ms=1_001)
    await live.enqueue(urgent, now_ms=1_002)
    order = []
    for n in range(3):
        offer = only_offer(await live.set_agent_state(agent(), "available", [QUEUE], now_ms=2_000 + n))
        order.append(offer.conversation_id)
    assert order == [urgent.conversation_id, first.conversation_id, second.conversation_id]


async def test_an_agent_in_two_queues_gets_the_work_that_waits_longest(live: LiveState) -> None:
    newer, older = task(QUEUE), task(OTHER_QUEUE)
    await live.enqueue(older, now_ms=1_000)
    await live.enqueue(newer, now_ms=2_000)
    offer = only_offer(await live.set_agent_state(agent(), "available", [QUEUE, OTHER_QUEUE], now_ms=3_000))
    assert offer.conversation_id == older.conversation_id


async def test_accept_turns_the_reservation_into_an_assignment(live: LiveState) -> None:
    ann, work = agent(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(work, now_ms=2_000))
    accepted = await live.accept(ann, offer.id, now_ms=3_000)
    assert accepted.conversation_id == work.conversation_id
    assert (await live.agent_status(ann)).load == 1
    # No longer pending: it does not expire, and accepting it again (the desktop's retry when PostgreSQL did
    # not record the first accept) answers the same assignment without booking the agent twice.
    assert await live.expire_reservations(now_ms=10**13) == LiveChanges()
    again = await live.accept(ann, offer.id, now_ms=3_001)
    assert again.conversation_id == work.conversation_id
    assert (await live.agent_status(ann)).load == 1
    with pytest.raises(NotFound):
        await live.accept(agent(), offer.id, now_ms=3_002)


async def test_a_completed_assignment_cannot_be_accepted_again(live: LiveState) -> None:
    ann, work = agent(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(work, now_ms=2_000))
    await live.accept(ann, offer.id, now_ms=3_000)
    await live.complete(ann, work.conversation_id, now_ms=4_000)
    with pytest.raises(NotFound):
        await live.accept(ann, offer.id, now_ms=5_000)
    assert (await live.agent_status(ann)).load == 0


async def test_accepting_someone_elses_reservation_is_not_found(live: LiveState) -> None:
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(task(), now_ms=2_000))
    with pytest.raises(NotFound):
        await live.accept(agent(), offer.id, now_ms=2_001)
    with pytest.raises(NotFound):
        await live.reject(agent(), offer.id, now_ms=2_001)


async def test_a_late_accept_is_a_conflict_and_the_work_is_queued_again(live: LiveState) -> None:
    ann, work = agent(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(work, now_ms=2_000))
    await live.set_agent_state(agent(), "away", [QUEUE], now_ms=2_001)
    with pytest.raises(Conflict):
        await live.accept(ann, offer.id, now_ms=2_000 + TTL)
    # Revoked, then offered afresh to whoever is longest idle — here Ann again, with a new reservation.
    status = await live.agent_status(ann)
    assert status.load == 1
    assert await live.queue_length(QUEUE) == 0


async def test_accepting_an_offer_the_sweep_took_back_is_a_conflict_for_its_agent_only(live: LiveState) -> None:
    ann, work = agent(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(work, now_ms=2_000))
    assert [r.id for r in (await live.expire_reservations(now_ms=2_000 + TTL)).revoked] == [offer.id]
    with pytest.raises(Conflict):
        await live.accept(ann, offer.id, now_ms=2_001 + TTL)
    with pytest.raises(NotFound):
        await live.accept(agent(), offer.id, now_ms=2_001 + TTL)


async def test_a_rejected_offer_goes_to_another_idle_agent_first(live: LiveState) -> None:
    ann, bob = agent(), agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(task(), now_ms=2_000))
    await live.set_agent_state(bob, "available", [QUEUE], now_ms=3_000)
    again = only_offer(await live.reject(ann, offer.id, now_ms=4_000))
    assert (again.agent_id, again.conversation_id) == (bob, offer.conversation_id)
    assert again.id != offer.id
    assert (await live.agent_status(ann)).load == 0


async def test_a_rejected_offer_keeps_its_place_at_the_front(live: LiveState) -> None:
    ann = agent()
    first, second = task(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(first, now_ms=2_000))
    await live.enqueue(second, now_ms=2_001)
    again = only_offer(await live.reject(ann, offer.id, now_ms=3_000))
    assert again.conversation_id == first.conversation_id


async def test_complete_frees_the_agent_for_the_next_work(live: LiveState) -> None:
    ann, first, second = agent(), task(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(first, now_ms=2_000))
    await live.enqueue(second, now_ms=2_001)
    await live.accept(ann, offer.id, now_ms=2_002)
    following = only_offer(await live.complete(ann, first.conversation_id, now_ms=3_000))
    assert following.conversation_id == second.conversation_id
    with pytest.raises(NotFound):
        await live.complete(ann, first.conversation_id, now_ms=3_001)


async def accepted(live: LiveState, ann: uuid.UUID, work: Task, now_ms: int) -> None:
    offer = only_offer(await live.enqueue(work, now_ms=now_ms))
    assert offer.agent_id == ann
    await live.accept(ann, offer.id, now_ms=now_ms + 1)


async def test_after_completing_an_agent_in_wrap_up_is_offered_nothing_until_its_time_is_up(live: LiveState) -> None:
    ann, first, second = agent(), task(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    await accepted(live, ann, first, now_ms=2_000)
    changes = await live.complete(ann, first.conversation_id, now_ms=3_000, wrap_up_ms=10_000)
    assert changes == LiveChanges(states=[AgentStateMoved(ann, "wrap_up", 13_000)])
    assert (await live.agent_status(ann)).state == "wrap_up"
    assert await live.enqueue(second, now_ms=4_000) == Enqueued(), "in wrap-up: offered nothing"
    assert await live.expire_reservations(now_ms=12_999) == LiveChanges()
    ended = await live.expire_reservations(now_ms=13_000)
    assert ended.states == [AgentStateMoved(ann, "available")]
    assert only_offer(ended).conversation_id == second.conversation_id
    assert await live.expire_reservations(now_ms=14_000) == LiveChanges(), "a wrap-up ends once"


async def test_an_agent_who_says_it_is_ready_leaves_wrap_up_at_once_and_the_sweep_leaves_it_alone(
    live: LiveState,
) -> None:
    ann, first, second = agent(), task(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    await accepted(live, ann, first, now_ms=2_000)
    await live.complete(ann, first.conversation_id, now_ms=3_000, wrap_up_ms=60_000)
    await live.enqueue(second, now_ms=4_000)
    ready = await live.set_agent_state(ann, "available", [QUEUE], now_ms=5_000)
    assert only_offer(ready).conversation_id == second.conversation_id
    swept = await live.expire_reservations(now_ms=63_000 + TTL)  # past the wrap-up's time and the offer's
    assert swept.states == [], "the wrap-up ended when the agent said it was ready"
    assert [r.conversation_id for r in swept.revoked] == [second.conversation_id]


async def test_an_agent_away_while_it_worked_goes_back_to_away_after_wrap_up(live: LiveState) -> None:
    ann, first, second = agent(), task(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    await accepted(live, ann, first, now_ms=2_000)
    await live.set_agent_state(ann, "away", [QUEUE], now_ms=2_500)
    await live.complete(ann, first.conversation_id, now_ms=3_000, wrap_up_ms=1_000)
    await live.enqueue(second, now_ms=3_500)
    ended = await live.expire_reservations(now_ms=4_000)
    assert (ended.states, ended.offers) == ([AgentStateMoved(ann, "away")], [])
    assert await live.queue_length(QUEUE) == 1


async def test_completing_again_in_wrap_up_moves_its_end_and_an_offline_agent_has_none(live: LiveState) -> None:
    ann, first, second, third = agent(), task(), task(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000, capacity=2)
    await accepted(live, ann, first, now_ms=2_000)
    await accepted(live, ann, second, now_ms=2_100)
    await live.complete(ann, first.conversation_id, now_ms=3_000, wrap_up_ms=1_000)
    moved = await live.complete(ann, second.conversation_id, now_ms=3_500, wrap_up_ms=1_000)
    assert moved.states == [AgentStateMoved(ann, "wrap_up", 4_500)]
    assert (await live.expire_reservations(now_ms=4_000)).states == []
    assert (await live.expire_reservations(now_ms=4_500)).states == [AgentStateMoved(ann, "available")]
    await accepted(live, ann, third, now_ms=5_000)
    await live.set_agent_state(ann, "offline", [QUEUE], now_ms=5_500)
    assert await live.complete(ann, third.conversation_id, now_ms=6_000, wrap_up_ms=1_000) == LiveChanges()
    assert (await live.agent_status(ann)).state == "offline"


async def test_an_agent_going_away_gives_its_pending_offer_to_another(live: LiveState) -> None:
    ann, bob = agent(), agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(task(), now_ms=2_000))
    await live.set_agent_state(bob, "available", [QUEUE], now_ms=3_000)
    changes = await live.set_agent_state(ann, "offline", [QUEUE], now_ms=4_000)
    assert [r.id for r in changes.revoked] == [offer.id]
    assert only_offer(changes).agent_id == bob
    assert (await live.agent_status(ann)).state == "offline"


async def test_assigned_work_stays_with_an_agent_that_goes_away(live: LiveState) -> None:
    ann, work = agent(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(work, now_ms=2_000))
    await live.accept(ann, offer.id, now_ms=2_001)
    assert await live.set_agent_state(ann, "away", [QUEUE], now_ms=3_000) == LiveChanges()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=4_000)
    assert await live.enqueue(task(), now_ms=5_000) == Enqueued(), "still busy with the assigned work"
    await live.complete(ann, work.conversation_id, now_ms=6_000)


async def test_unanswered_offers_expire_and_the_agent_is_set_away(live: LiveState) -> None:
    ann, bob = agent(), agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(task(), now_ms=2_000))
    await live.set_agent_state(bob, "available", [QUEUE], now_ms=3_000)
    assert await live.expire_reservations(now_ms=2_000 + TTL - 1) == LiveChanges()
    changes = await live.expire_reservations(now_ms=2_000 + TTL)
    assert [r.id for r in changes.revoked] == [offer.id]
    assert only_offer(changes).agent_id == bob
    status = await live.agent_status(ann)
    assert (status.state, status.load) == ("away", 0)


async def test_concurrent_routers_never_book_an_agent_twice_nor_hand_work_out_twice(
    redis_client: aioredis.Redis, namespace: str, redis_url: str
) -> None:
    fake = isinstance(redis_client, fakeredis.FakeAsyncRedis)
    clients = [redis_client] * 4 if fake else [aioredis.from_url(redis_url) for _ in range(4)]
    routers = [LiveState(client, namespace=namespace, reservation_ttl_ms=TTL) for client in clients]
    agents = [agent() for _ in range(10)]
    work = [task() for _ in range(50)]

    results = await asyncio.gather(
        *(routers[n % 4].enqueue(w, now_ms=1_000 + n) for n, w in enumerate(work)),
        *(routers[n % 4].set_agent_state(a, "available", [QUEUE], now_ms=1_000 + n) for n, a in enumerate(agents)),
        *(routers[n % 4].enqueue(w, now_ms=2_000 + n) for n, w in enumerate(work)),  # redeliveries
    )
    offers = [offer for changes in results for offer in changes.offers]
    assert sorted(o.agent_id for o in offers) == sorted(agents), "each agent booked exactly once"
    assert len({o.conversation_id for o in offers}) == len(offers), "no work handed out twice"
    assert await routers[0].queue_length(QUEUE) == len(work) - len(offers)
    if not fake:
        for client in clients:
            await client.aclose()


async def test_scripts_survive_a_redis_that_forgot_them(live: LiveState, redis_client: aioredis.Redis) -> None:
    await redis_client.script_flush()
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    assert only_offer(await live.enqueue(task(), now_ms=2_000)).agent_id == ann


async def test_a_rejecting_agent_goes_behind_one_freed_in_the_same_millisecond(live: LiveState) -> None:
    ann, bob = agent(), agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offer = only_offer(await live.enqueue(task(), now_ms=2_000))
    await live.set_agent_state(bob, "available", [QUEUE], now_ms=3_000)
    assert only_offer(await live.reject(ann, offer.id, now_ms=3_000)).agent_id == bob


async def test_changes_sent_together_in_one_pipeline_keep_every_invariant(live: LiveState) -> None:
    """Under load the changes travel to Redis as batches: each must still be atomic on its own."""
    agents = [agent() for _ in range(30)]
    await asyncio.gather(*(live.set_agent_state(a, "available", [QUEUE], now_ms=1_000) for a in agents))
    work = [task() for _ in range(100)]
    results = await asyncio.gather(*(live.enqueue(w, now_ms=2_000 + n) for n, w in enumerate(work)))
    offers = [offer for changes in results for offer in changes.offers]
    assert len(offers) == len(agents)
    assert {offer.agent_id for offer in offers} == set(agents)
    assert len({offer.conversation_id for offer in offers}) == len(agents)
    assert await live.queue_length(QUEUE) == len(work) - len(agents)
    accepted = await asyncio.gather(*(live.accept(o.agent_id, o.id, now_ms=3_000) for o in offers))
    completed = await asyncio.gather(*(live.complete(r.agent_id, r.conversation_id, now_ms=4_000) for r in accepted))
    assert sum(len(changes.offers) for changes in completed) == len(agents)
    assert await live.queue_length(QUEUE) == len(work) - 2 * len(agents)


async def test_withdrawn_queued_work_leaves_its_queue_and_is_offered_to_nobody(live: LiveState) -> None:
    waiting, behind = task(), task()
    await live.enqueue(waiting, now_ms=1_000)
    await live.enqueue(behind, now_ms=1_001)
    withdrawal = await live.withdraw(waiting.conversation_id, now_ms=2_000, abandoned=True)
    assert (withdrawal.found, withdrawal.taken, withdrawal.changes) == (True, False, LiveChanges())
    assert await live.queue_length(QUEUE) == 1
    ann = agent()
    offer = only_offer(await live.set_agent_state(ann, "available", [QUEUE], now_ms=3_000))
    assert offer.conversation_id == behind.conversation_id


async def test_withdrawing_offered_work_revokes_the_offer_and_frees_the_agent_for_the_next(live: LiveState) -> None:
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    offered, behind = task(), task()
    offer = only_offer(await live.enqueue(offered, now_ms=2_000))
    await live.enqueue(behind, now_ms=2_001)
    withdrawal = await live.withdraw(offered.conversation_id, now_ms=3_000, abandoned=True)
    assert [revoked.id for revoked in withdrawal.changes.revoked] == [offer.id]
    assert only_offer(withdrawal.changes).conversation_id == behind.conversation_id
    # The late accept of the revoked offer is told it is gone, not that it never existed.
    with pytest.raises(Conflict):
        await live.accept(ann, offer.id, now_ms=3_001)
    assert (await live.withdraw(offered.conversation_id, now_ms=3_002, abandoned=True)).found is False


async def test_work_withdrawn_before_its_router_queued_it_is_queued_nowhere_and_offered_to_nobody(
    live: LiveState,
) -> None:
    """A caller hung up after the router recorded the call and before it queued it: the withdrawal finds no work,
    and the router's enqueue that follows makes none, so no agent is offered a call nobody is on."""
    ann, late = agent(), task()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    withdrawal = await live.withdraw(
        late.conversation_id, now_ms=2_000, abandoned=True, interaction_id=late.interaction_id, queue_id=QUEUE
    )
    assert (withdrawal.found, withdrawal.taken) == (False, False)
    enqueued = await live.enqueue(late, now_ms=2_001)
    assert (enqueued.offers, enqueued.held_by) == ([], None)
    assert await live.queue_length(QUEUE) == 0
    # Its redelivery changes nothing either; the agent takes the next work.
    assert (await live.enqueue(late, now_ms=2_002, offer_again=True)).offers == []
    next_work = task()
    assert only_offer(await live.enqueue(next_work, now_ms=2_003)).conversation_id == next_work.conversation_id


async def test_accepted_work_is_not_withdrawn(live: LiveState) -> None:
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    work = task()
    offer = only_offer(await live.enqueue(work, now_ms=2_000))
    await live.accept(ann, offer.id, now_ms=2_500)
    withdrawal = await live.withdraw(work.conversation_id, now_ms=3_000, abandoned=True)
    assert (withdrawal.found, withdrawal.taken) == (True, True)
    assert (await live.agent_status(ann)).load == 1


async def test_an_agent_on_a_call_is_offered_nothing_until_the_call_is_released_once(live: LiveState) -> None:
    ann, other_queue_work = agent(), task(OTHER_QUEUE)
    await live.set_agent_state(ann, "available", [QUEUE, OTHER_QUEUE], now_ms=1_000)
    await live.occupy(ann, "CA1", until_ms=100_000, now_ms=1_500)
    assert (await live.enqueue(task(), now_ms=2_000)).offers == []
    assert (await live.enqueue(other_queue_work, now_ms=2_100)).offers == []
    # Away and back while on the call: still on it.
    await live.set_agent_state(ann, "away", [QUEUE, OTHER_QUEUE], now_ms=2_200)
    assert (await live.set_agent_state(ann, "available", [QUEUE, OTHER_QUEUE], now_ms=2_300)).offers == []
    assert (await live.expire_reservations(now_ms=99_999)).offers == []

    freed = only_offer(await live.release("CA1", now_ms=3_000))
    assert freed.agent_id == ann
    assert (await live.release("CA1", now_ms=3_100)).offers == []  # the same end again changes nothing
    assert (await live.release("CA-unknown", now_ms=3_200)).offers == []


async def test_a_call_whose_end_never_comes_frees_its_agent_at_its_bound(live: LiveState) -> None:
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    await live.occupy(ann, "CA1", until_ms=50_000, now_ms=1_000)
    work = task()
    assert (await live.enqueue(work, now_ms=2_000)).offers == []
    offer = only_offer(await live.expire_reservations(now_ms=50_000))
    assert (offer.agent_id, offer.conversation_id) == (ann, work.conversation_id)
    assert (await live.release("CA1", now_ms=60_000)).offers == []  # its late end frees nobody twice


async def test_an_agent_on_a_newer_call_is_not_freed_by_the_end_of_its_older_one(live: LiveState) -> None:
    ann = agent()
    await live.set_agent_state(ann, "available", [QUEUE], now_ms=1_000)
    await live.occupy(ann, "CA1", until_ms=100_000, now_ms=1_000)
    await live.occupy(ann, "CA2", until_ms=100_000, now_ms=1_100)
    assert (await live.enqueue(task(), now_ms=2_000)).offers == []
    assert (await live.release("CA1", now_ms=3_000)).offers == []
    assert only_offer(await live.release("CA2", now_ms=4_000)).agent_id == ann
