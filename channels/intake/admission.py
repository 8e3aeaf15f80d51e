"""Bounds the contacts in hand across every channel's intake (shared by all channels, owned by none).

A provider retries a 503 (Twilio does, with the same idempotency key), so nothing is lost. What the bound buys
is that an overloaded service goes on carrying what it accepted at full speed, instead of taking everything
in, confirming nothing within the provider's patience, and carrying less — measured in docs/performance.md,
"Figures behind choices in the code".

Refusals are logged as a summary — the first at once, then how many more every `report_every` seconds while
they go on — not one line each: at the ceiling that was thousands of lines a second, each costing the CPU the
service was short of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from contactcenter.errors import Overloaded

log = logging.getLogger(__name__)


# Runs a callback after a delay, as `loop.call_later` does; tests pass one they fire by hand.
Schedule = Callable[[float, Callable[[], None]], asyncio.TimerHandle]


def _call_later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)


class Admission:
    def __init__(self, limit: int, *, report_every: float = 10.0, schedule: Schedule = _call_later) -> None:
        if limit < 1:
            raise ValueError("admission needs room for at least one contact")
        self._limit = limit
        self._schedule = schedule
        self._in_hand = 0
        self._report_every = report_every
        self._refused = 0
        self._unreported = 0
        self._report: asyncio.TimerHandle | None = None

    @property
    def in_hand(self) -> int:
        return self._in_hand

    @property
    def refused(self) -> int:
        """Contacts refused since the process started."""
        return self._refused

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one place while a contact is taken in; `Overloaded` (503, retry) when all are taken."""
        if self._in_hand >= self._limit:
            self._count_refusal()
            raise Overloaded("too many contacts are being taken in; retry shortly")
        self._in_hand += 1
        try:
            yield
        finally:
            self._in_hand -= 1

    def _count_refusal(self) -> None:
        self._refused += 1
        if self._report is not None:
            self._unreported += 1
            return
        log.warning(
            "%d contacts in hand, the bound (CC_WEBHOOK_CONCURRENCY): refusing more with 503 until there is room; "
            "providers retry them",
            self._limit,
        )
        self._report = self._schedule(self._report_every, self._report_refusals)

    def _report_refusals(self) -> None:
        if not self._unreported:
            self._report = None  # the next refusal is news again
            return
        log.warning("refused %d more contacts in the last %g s (503, retried)", self._unreported, self._report_every)
        self._unreported = 0
        self._report = self._schedule(self._report_every, self._report_refusals)
