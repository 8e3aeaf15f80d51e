"""Live state's events: each script that changes what other systems are told of appends its events to the
stream in the same run — on a real Redis and on fakeredis (embedded mode), the same scripts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis

from contactcenter.events.stream import moved_event
from contactcenter.host.embedded import in_process_redis
from contactcenter.live import Task
from contactcenter.live.state import LiveState

TTL = 30_000
QUEUE = uuid.UUID("00000000-0000-4000-8000-0000000000b1")


@pytest.fixture(params=["redis", "fakeredis"])
async def redis_client(
    request: pytest.FixtureRequest, redis_url: str, redis_cleanup: None
) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url) if request.param == "redis" else in_process_redis()
    yield client
    await client.aclose()


class Stream:
    """What the scripts appended since the last look, as (type, partition key, data)."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._redis = redis
        self._key = f"{namespace}:events"

    async def taken(self) -> list[tuple[str, str, dict[str, str]]]:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]", await self._redis.xrange(self._key)
        )  # bytes: no decode_responses; cast: redis-py 7 and 8 type replies differently
        await self._redis.delete(self._key)
        events = []
        for entry_id, fields in entries:
            text = {_text(k): _text(v) for k, v in fields.items()}
            moved = moved_event(_text(entry_id), text)
            events.append((moved.type, moved.partition_key, {k: v for k, v in text.items() if k not in ("time",)}))
        return events


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture
def stream(redis_client: aioredis.Redis, namespace: str) -> Stream:
    return Stream(redis_client, namespace)


@pytest.fixture
def live(redis_client: aioredis.Redis, namespace: str) -> LiveState:
    return LiveState(redis_client, namespace=namespace, reservation_ttl_ms=TTL)


def types(events: list[tuple[str, str, dict[str, str]]]) -> list[str]:
    return [event_type for event_type, _, _ in events]


async def test_queueing_offering_accepting_and_completing_tell_the_interactions_story(
    live: LiveState, stream: Stream
) -> None:
    agent, work = uuid.uuid4(), Task(uuid.uuid4(), QUEUE, uuid.uuid4())
    await live.set_agent_state(agent, "available", [QUEUE], 1_000)
    assert types(await stream.taken()) == ["agent.state_changed"]
    offer = (await live.enqueue(work, 2_000)).offers[0]
    events = await stream.taken()
    assert types(events) == ["interaction.routed", "reservation.created", "interaction.offered"]
    assert events[1][1] == f"reservation:{offer.id}"
    assert events[2][1] == f"interaction:{work.interaction_id}"
    assert events[1][2]["expires_at_ms"] == str(2_000 + TTL)
    # A redelivery of the same work changes nothing, and says nothing.
    await live.enqueue(work, 2_500, offer_again=True)
    assert await stream.taken() == []
    await live.accept(agent, offer.id, 3_000)
    assert types(await stream.taken()) == ["reservation.accepted", "interaction.answered"]
    await live.complete(agent, work.conversation_id, 4_000)
    assert types(await stream.taken()) == ["interaction.completed"]


async def test_an_offer_declined_missed_or_left_behind_says_which(live: LiveState, stream: Stream) -> None:
    ann, bob = uuid.uuid4(), uuid.uuid4()
    await live.set_agent_state(ann, "available", [QUEUE], 1_000, capacity=2)
    first, second = Task(uuid.uuid4(), QUEUE, uuid.uuid4()), Task(uuid.uuid4(), QUEUE, uuid.uuid4())
    offered = (await live.enqueue(first, 2_000)).offers[0]
    await stream.taken()
    await live.reject(ann, offered.id, 2_100)
    events = await stream.taken()
    assert types(events)[0] == "reservation.rejected" and events[0][1] == f"reservation:{offered.id}"
    await live.enqueue(second, 2_200)
    await stream.taken()
    # Ann misses an offer: it expires, her other one is revoked, and she is set away.
    expired = await live.expire_reservations(2_000 + TTL * 3)
    assert len(expired.revoked) == 2
    assert sorted(types(await stream.taken())) == [
        "agent.state_changed",
        "reservation.expired",
        "reservation.revoked",
    ]
    # Bob takes both and goes offline before answering: both offers are revoked.
    await live.set_agent_state(bob, "available", [QUEUE], 200_000, capacity=2)
    await stream.taken()
    await live.set_agent_state(bob, "offline", [QUEUE], 200_100)
    assert sorted(types(await stream.taken())) == [
        "agent.state_changed",
        "reservation.revoked",
        "reservation.revoked",
    ]
