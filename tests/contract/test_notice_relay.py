"""The notice relay's contract, on a real Redis and on fakeredis (embedded mode): a gateway receives the
notices of the agents it holds, and only those, for as long as it holds them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from contactcenter.agents.relay import NoticeRelay
from contactcenter.errors import Unavailable
from contactcenter.host.embedded import in_process_redis


class Received:
    def __init__(self) -> None:
        self.notices: list[tuple[uuid.UUID, bytes]] = []
        self.changed = asyncio.Event()

    async def deliver(self, agent_id: uuid.UUID, body: bytes) -> None:
        self.notices.append((agent_id, body))
        self.changed.set()

    async def until(self, count: int, timeout: float = 5.0) -> list[tuple[uuid.UUID, bytes]]:
        async with asyncio.timeout(timeout):
            while len(self.notices) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.notices


@pytest.fixture(params=["redis", "fakeredis"])
async def redis_client(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url) if request.param == "redis" else in_process_redis()
    yield client
    await client.aclose()


@pytest.fixture
async def relays(redis_client: aioredis.Redis, namespace: str) -> AsyncIterator[tuple[NoticeRelay, NoticeRelay]]:
    """A router's relay (sends) and a gateway's (listens), on connections of their own."""
    router, gateway = NoticeRelay(redis_client, namespace, timeout=5), NoticeRelay(redis_client, namespace, timeout=5)
    yield router, gateway
    await gateway.close()
    await router.close()


@pytest.fixture
async def received(relays: tuple[NoticeRelay, NoticeRelay]) -> Received:
    """What the gateway's relay hands over, listened to from the start."""
    heard = Received()
    relays[1].listen(heard.deliver)
    return heard


async def test_a_gateway_receives_the_notices_of_the_agents_it_holds_and_no_others(
    relays: tuple[NoticeRelay, NoticeRelay], received: Received
) -> None:
    router, gateway = relays
    held, elsewhere = uuid.uuid4(), uuid.uuid4()
    await gateway.hold(held)
    await router.send(elsewhere, b"not for this gateway")
    await router.send(held, b"an offer")
    assert await received.until(1) == [(held, b"an offer")]
    await asyncio.sleep(0.1)
    assert received.notices == [(held, b"an offer")]


async def test_notices_that_meet_all_arrive_in_the_order_sent_per_agent(
    relays: tuple[NoticeRelay, NoticeRelay], received: Received
) -> None:
    router, gateway = relays
    agents = [uuid.uuid4() for _ in range(5)]
    for agent in agents:
        await gateway.hold(agent)
    # Sent side by side, they leave in few pipelines; each agent's still come in the order they were sent.
    await asyncio.gather(*(router.send(agent, f"{n}".encode()) for n in range(20) for agent in agents))
    notices = await received.until(100)
    for agent in agents:
        assert [body for who, body in notices if who == agent] == [f"{n}".encode() for n in range(20)]


async def test_an_agent_whose_socket_does_not_drain_holds_up_no_other(
    relays: tuple[NoticeRelay, NoticeRelay],
) -> None:
    router, gateway = relays
    received = Received()
    stuck, other = uuid.uuid4(), uuid.uuid4()

    async def deliver(agent_id: uuid.UUID, body: bytes) -> None:
        if agent_id == stuck:
            await asyncio.Event().wait()  # a desktop on a link that takes nothing more
        await received.deliver(agent_id, body)

    gateway.listen(deliver)
    await gateway.hold(stuck)
    await gateway.hold(other)
    await router.send(stuck, b"offer 1")
    await router.send(other, b"offer 2")
    assert await received.until(1) == [(other, b"offer 2")]


async def test_a_released_agent_is_no_longer_heard_and_can_be_held_again(
    relays: tuple[NoticeRelay, NoticeRelay], received: Received
) -> None:
    router, gateway = relays
    agent = uuid.uuid4()
    await gateway.hold(agent)
    await gateway.release(agent)
    await router.send(agent, b"after it left")
    # Released, then held again at once (an agent reconnecting): the subscription is what was asked last.
    await gateway.release(agent)
    hold_again = asyncio.create_task(gateway.hold(agent))
    await hold_again
    await router.send(agent, b"after it came back")
    assert await received.until(1) == [(agent, b"after it came back")]
    await asyncio.sleep(0.1)
    assert len(received.notices) == 1


async def test_a_gateway_that_lost_its_connection_hears_its_agents_again(
    redis_url: str, namespace: str, redis_cleanup: None
) -> None:
    """Redis closed the gateway's connection (a restart, a failover): it connects again and subscribes anew."""
    client = aioredis.from_url(redis_url)
    gateway_client = aioredis.from_url(redis_url, client_name=f"{namespace}-gateway")
    router = NoticeRelay(client, namespace, timeout=5)
    gateway = NoticeRelay(gateway_client, namespace, timeout=5)
    received = Received()
    gateway.listen(received.deliver)
    agent = uuid.uuid4()
    channel = f"{namespace}:agent:{agent}"
    try:
        await gateway.hold(agent)
        listeners = [c for c in await client.client_list() if c["name"] == f"{namespace}-gateway"]
        assert listeners
        for listener in listeners:
            await client.client_kill_filter(_id=listener["id"])
        async with asyncio.timeout(10):
            while (await client.pubsub_numsub(channel))[0][1] != 1:
                await asyncio.sleep(0.05)
        await router.send(agent, b"after the cut")
        assert await received.until(1) == [(agent, b"after the cut")]
    finally:
        await gateway.close()
        await router.close()
        await gateway_client.aclose()
        await client.aclose()


async def test_holding_an_agent_without_redis_fails_at_once() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    relay = NoticeRelay(client, "nowhere", timeout=5)
    try:
        with pytest.raises(RedisConnectionError):
            await relay.hold(uuid.uuid4())
    finally:
        await relay.close()
        await client.aclose()


async def test_a_subscription_redis_confirms_too_late_is_taken_back(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    """A hold that times out may still have subscribed: the gateway would go on hearing, and subscribing again
    after every reconnection, an agent it does not hold. Here nothing reads the confirmations, so none arrives
    in time; Redis must not keep the subscription."""
    gateway = NoticeRelay(redis_client, namespace, timeout=0.3)
    agent = uuid.uuid4()
    try:
        with pytest.raises(Unavailable):
            await gateway.hold(agent)
        assert await redis_client.pubsub_numsub(f"{namespace}:agent:{agent}") == [
            (f"{namespace}:agent:{agent}".encode(), 0)
        ]
    finally:
        await gateway.close()
