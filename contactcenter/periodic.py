"""Runs a housekeeping job (a router's sweep, a gateway's check) every few seconds until stopped.

Stopped with an event rather than by cancelling: a cancellation landing inside a Redis call can come out
as a connection error, which the loop would take for a passing failure and carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from redis.exceptions import RedisError

from contactcenter.errors import ContactCenterError

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, job: Callable[[], Awaitable[None]], *, every_seconds: float) -> None:
        self._name = name
        self._job = job
        self._every_seconds = every_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._job()
            except (ContactCenterError, OSError, RedisError, asyncpg.PostgresError) as exc:
                log.warning("%s failed, trying again: %s", self._name, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every_seconds)
