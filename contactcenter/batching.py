"""Group commit for round trips: calls that arrive while earlier ones are on the wire travel together next.

A `Batcher` runs at most `lanes` batches at once. When a lane is free a call goes out alone, at once, so an
idle service waits for nothing; under load the calls that queue behind the busy lanes leave as one batch —
one pipeline to Redis, one statement to PostgreSQL — so the cost per call falls as the load rises, instead
of every call paying a round trip and the machine drowning in system calls.

Each call still gets its own answer or its own failure. A caller that stops waiting before its batch leaves
is dropped from it; once the batch has left, the call runs to the end whatever its caller does. With a
`timeout`, a call not answered within it fails with TimeoutError (waiting for a lane included), on one timer
for all the calls in hand rather than one per call.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# What a batch answers: per call, in order, its result or the exception that call raises.
RunBatch = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Batcher(Generic[T, R]):
    def __init__(
        self, run: RunBatch[T, R], *, lanes: int = 2, max_batch: int = 256, timeout: float | None = None
    ) -> None:
        if lanes < 1 or max_batch < 1:
            raise ValueError("a batcher needs at least one lane and room for one call")
        if timeout is not None and timeout <= 0:
            raise ValueError("a batcher's timeout must be above zero")
        self._run = run
        self._lanes = lanes
        self._max_batch = max_batch
        self._timeout = timeout
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._busy_lanes = 0
        self._lane_tasks: set[asyncio.Task[None]] = set()
        # Calls by deadline (all share one timeout, so arrival order is deadline order), and the one timer.
        self._deadlines: deque[tuple[float, asyncio.Future[R]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def call(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._timeout is not None:
            self._watch(loop, future)
        if self._busy_lanes < self._lanes:
            self._busy_lanes += 1
            # A lane runs the batches of many callers: in a context of its own, not the first caller's, so that
            # what it logs is not put down to that caller's contact (`logs.log_context`).
            lane = asyncio.create_task(self._drain(), context=contextvars.Context())
            self._lane_tasks.add(lane)
            lane.add_done_callback(self._lane_tasks.discard)
        return await future

    def _watch(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[R]) -> None:
        assert self._timeout is not None
        deadlines = self._deadlines
        while deadlines and deadlines[0][1].done():  # answered calls leave as new ones come
            deadlines.popleft()
        deadlines.append((loop.time() + self._timeout, future))
        if self._timer is None:
            self._timer = loop.call_at(deadlines[0][0], self._expire)

    def _expire(self) -> None:
        """Fail the calls past their deadline; wake again at the next one's."""
        self._timer = None
        loop = asyncio.get_running_loop()
        deadlines, now = self._deadlines, loop.time()
        while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
            _, future = deadlines.popleft()
            if not future.done():  # a batch not yet left drops it; one that has left answers no one
                future.set_exception(TimeoutError(f"no answer within {self._timeout} s"))
        if deadlines:
            self._timer = loop.call_at(deadlines[0][0], self._expire)

    def _next_batch(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        while self._waiting and len(batch) < self._max_batch:
            item, future = self._waiting.popleft()
            if not future.done():  # a caller that gave up before its batch left is not run at all
                batch.append((item, future))
        return batch

    async def _drain(self) -> None:
        try:
            while batch := self._next_batch():
                await self._run_one(batch)
        finally:
            self._busy_lanes -= 1

    async def _run_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise AssertionError(f"a batch of {len(batch)} calls answered {len(results)} results")
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the whole round trip failed: every call in it fails the same way
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
