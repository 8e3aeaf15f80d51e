"""A bus handler for tests: it records what it is handed and lets the test wait for it."""

from __future__ import annotations

import asyncio

from contactcenter.bus import Delivery


class Inbox:
    """A handler that records deliveries, failing the first `fail_times`; tests wait on it with a deadline."""

    def __init__(self, fail_times: int = 0) -> None:
        self.deliveries: list[Delivery] = []
        self.fail_times = fail_times
        self._changed = asyncio.Condition()

    async def __call__(self, delivery: Delivery) -> None:
        async with self._changed:
            self.deliveries.append(delivery)
            attempt = len(self.deliveries)
            self._changed.notify_all()
        if attempt <= self.fail_times:
            raise RuntimeError("this handler fails on purpose")

    async def wait_for(self, count: int, timeout: float = 10) -> list[Delivery]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.deliveries) >= count)
        return self.deliveries

    def bodies(self) -> list[bytes]:
        return [delivery.body for delivery in self.deliveries]
