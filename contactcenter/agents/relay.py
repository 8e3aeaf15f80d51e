"""How a notice for an agent (an offer, a revocation, a new message) reaches the gateway process holding the
agent's socket: Redis pub/sub, one channel per agent (`<namespace>:agent:<id>`), which a gateway subscribes to
while it holds the agent. Routers and gateways share Redis already (live state); a notice crosses it in one
hop, where the broker took a publish, a confirm, a queue and a delivery with its ack.

Notices need no more than at-most-once, as before on the bus: one sent while no gateway holds the agent, or
while a gateway's connection to Redis is made again, is missed — an unanswered offer expires and goes back to
the queue; a message is in the `hello` of the agent's next connection. Sends that meet under load leave as
one pipeline (`batching.Batcher`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contactcenter.batching import Batcher
from contactcenter.errors import Unavailable

log = logging.getLogger(__name__)

Deliver = Callable[[uuid.UUID, bytes], Awaitable[object]]
Notice = tuple[str, bytes]  # (channel, body)

# A listener that lost Redis tries again after this long, doubled each time up to the cap.
RETRY_FIRST_S = 0.1
RETRY_CAP_S = 5.0


class NoticeRelay:
    def __init__(self, redis: aioredis.Redis, namespace: str, *, timeout: float, audience: str = "agent") -> None:
        """`audience` names whom the notices are for: agents, or another kind of socket held by id (chat
        visitors: `visitor`), each on channels of its own."""
        self._redis = redis
        self._prefix = f"{namespace}:{audience}:"
        self._timeout = timeout
        self._sender: Batcher[Notice, Any] = Batcher(self._publish, lanes=1)
        self._pubsub = redis.pubsub()
        # Subscribe and unsubscribe leave in the order they were asked for (asyncio's lock is first come,
        # first served): an agent that leaves and comes back is subscribed at the end, not unsubscribed.
        self._order = asyncio.Lock()
        self._confirming: dict[bytes, list[asyncio.Future[None]]] = {}
        self._held: set[bytes] = set()  # channels whose subscription was confirmed and not released since
        self._reader: asyncio.Task[None] | None = None
        self._handing: set[asyncio.Task[None]] = set()

    def _channel(self, agent_id: uuid.UUID) -> str:
        return f"{self._prefix}{agent_id}"

    # The sending side (routers, and gateways for work an agent's `complete` freed).

    async def send(self, agent_id: uuid.UUID, body: bytes) -> None:
        """Publish a notice for the agent; delivered if a gateway holds the agent now, missed otherwise."""
        await self._sender.call((self._channel(agent_id), body))

    async def _publish(self, notices: list[Notice]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, body in notices:
                pipe.publish(channel, body)
            return list(await pipe.execute(raise_on_error=False))

    # The listening side (gateways).

    def listen(self, deliver: Deliver) -> None:
        """Hand every notice for an agent this process holds to `deliver(agent_id, body)`."""
        self._reader = asyncio.create_task(self._read(deliver))

    async def hold(self, agent_id: uuid.UUID) -> None:
        """Receive the agent's notices from now on: returns once Redis has confirmed the subscription, or
        raises (`Unavailable` when it does not answer in time)."""
        channel = self._channel(agent_id).encode()
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(channel, []).append(confirmed)
        try:
            async with asyncio.timeout(self._timeout):
                async with self._order:
                    await self._pubsub.subscribe(channel)
                await confirmed
        except TimeoutError as exc:
            self._stop_waiting(channel, confirmed)
            await self._withdraw(channel)
            raise Unavailable(f"Redis did not confirm a subscription within {self._timeout}s") from exc
        except BaseException:
            self._stop_waiting(channel, confirmed)
            raise
        self._stop_waiting(channel, confirmed)
        self._held.add(channel)

    def _stop_waiting(self, channel: bytes, confirmed: asyncio.Future[None]) -> None:
        waiting = self._confirming.get(channel, [])
        if confirmed in waiting:
            waiting.remove(confirmed)
        if not waiting:
            self._confirming.pop(channel, None)

    async def _withdraw(self, channel: bytes) -> None:
        """A subscription Redis did not confirm in time may stand all the same (sent, confirmed late): this
        gateway would hear, and subscribe again after every reconnection, an agent it does not hold. Take it
        back — unless the agent is held here after all, or another hold of it is under way."""
        try:
            async with asyncio.timeout(self._timeout), self._order:
                if channel not in self._held and channel not in self._confirming:
                    await self._pubsub.unsubscribe(channel)
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("a subscription Redis did not confirm could not be taken back (%s)", exc)

    async def release(self, agent_id: uuid.UUID) -> None:
        """Stop receiving the agent's notices (another gateway may hold it now)."""
        channel = self._channel(agent_id)
        self._held.discard(channel.encode())
        async with self._order:
            await self._pubsub.unsubscribe(channel)

    async def close(self) -> None:
        tasks = [*self._handing, *([self._reader] if self._reader is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub.aclose unannotated

    @staticmethod
    async def _hand_over(deliver: Deliver, agent_id: uuid.UUID, body: bytes) -> None:
        try:
            await deliver(agent_id, body)
        except Exception:
            log.exception("a notice for agent %s could not be handed over", agent_id)

    async def _read(self, deliver: Deliver) -> None:
        prefix = len(self._prefix)
        failures = 0
        while True:
            try:
                if self._pubsub.connection is None:
                    async with self._order:  # a subscribe may be making the connection right now
                        await self._pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub.connect unannotated
                # After a lost connection redis-py connects again here and subscribes to every channel anew.
                message = await self._pubsub.get_message(timeout=None)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                failures += 1
                if failures == 1:
                    log.warning("lost Redis for agents' notices (%s); connecting again", exc)
                await asyncio.sleep(min(RETRY_FIRST_S * 2 ** (failures - 1), RETRY_CAP_S))
                continue
            if failures:
                log.warning("Redis is back for agents' notices")
                failures = 0
            if message is None:
                continue
            kind, channel = message["type"], message["channel"]
            if kind == "message":
                try:
                    agent_id = uuid.UUID(channel[prefix:].decode())
                except ValueError:
                    continue
                # Each on its own task: a socket that is slow to drain holds up its own agent's notices only.
                # They still reach each agent in order: the tasks start in order, and a socket sends in turn.
                handing = asyncio.create_task(self._hand_over(deliver, agent_id, message["data"]))
                self._handing.add(handing)
                handing.add_done_callback(self._handing.discard)
            elif kind == "subscribe":
                for confirmed in self._confirming.pop(channel, []):
                    if not confirmed.done():
                        confirmed.set_result(None)
