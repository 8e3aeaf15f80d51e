"""The queue watch reads the directory again when an event names a queue or agent it has not met; a PostgreSQL
connection cut in the middle of that read (what asyncpg raises then: InternalClientError, seen in CI after
`pg_terminate_backend`) is logged, and neither ends the watch nor makes its stop raise."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import asyncpg
import pytest

from contactcenter.supervision.figures import Figures
from contactcenter.supervision.watch import QueueWatch


class CutDirectory:
    """A directory whose connection PostgreSQL cut mid-protocol."""

    def __init__(self) -> None:
        self.reads = 0

    async def queue_targets(self) -> list[Any]:
        self.reads += 1
        raise asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress")

    async def agents(self) -> list[Any]:
        return []


async def test_a_directory_read_cut_mid_protocol_is_logged_and_the_watch_still_stops_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = CutDirectory()
    unused: Any = None  # the watch reads only its directory here
    watch = QueueWatch(
        pool=unused,
        directory=cast(Any, directory),
        live=unused,
        figures=Figures(short_abandon_seconds=5.0, default_target_seconds=20.0, default_goal=0.8),
    )
    watch._learn({"queue_id": str(uuid.uuid4())})  # an event naming a queue the watch has not met
    async with asyncio.timeout(5):
        while directory.reads == 0:
            await asyncio.sleep(0.01)
    await watch.stop()  # raised the cut connection's error before
    assert directory.reads == 1
    assert "queue watch could not read the directory" in caplog.text
