"""The event log's retention (issue 15): what is past its time — published events older than
`CC_EVENT_RETENTION_DAYS`, webhook deliveries delivered more than `CC_WEBHOOK_DELIVERED_RETENTION_HOURS` ago,
parked deliveries older than the events' days (the host names these) — is deleted. Each statement deletes a
bounded batch in its own short transaction (rows another router is deleting are skipped), and a run repeats
it until less than a batch is left, up to `max_batches` each: a backlog (after a long stop) is worked off over a
few runs, never in one long lock."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

BATCH = 10_000
MAX_BATCHES = 100

# Deletes up to the given number of rows past their time; how many it deleted.
Forget = Callable[[int], Awaitable[int]]


class Retention:
    def __init__(self, forget: Mapping[str, Forget], *, batch: int = BATCH, max_batches: int = MAX_BATCHES) -> None:
        self._forget = dict(forget)
        self._batch = batch
        self._max_batches = max_batches

    async def purge(self) -> dict[str, int]:
        """One run: how many rows of each kind it deleted."""
        purged = {name: await self._in_batches(forget) for name, forget in self._forget.items()}
        if any(purged.values()):
            log.info("retention deleted %s", ", ".join(f"{n} {name}" for name, n in purged.items()))
        return purged

    async def _in_batches(self, forget: Forget) -> int:
        total = 0
        for _ in range(self._max_batches):
            deleted = await forget(self._batch)
            total += deleted
            if deleted < self._batch:
                break
        return total
