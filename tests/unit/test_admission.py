"""The admission bound: a 503 to retry past it, and refusals logged as a summary, not one line each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from channels.intake.admission import Admission
from contactcenter.errors import Overloaded


def _refuse(admission: Admission, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Overloaded), admission.slot():
            pass


async def test_past_the_bound_a_contact_is_refused_and_room_comes_back_when_one_is_done() -> None:
    admission = Admission(2)
    with admission.slot(), admission.slot():
        _refuse(admission, 1)
    with admission.slot():
        assert admission.in_hand == 1
    assert (admission.in_hand, admission.refused) == (0, 1)


class ManualTimers:
    """Timers that fire when the test says: the summary's rhythm without sleeps (the host's speed varies)."""

    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None]]] = []

    def schedule(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        self.due.append((delay, callback))
        return asyncio.get_running_loop().call_later(3600, lambda: None)  # a handle; never relied on

    def fire(self) -> None:
        """Let the report period end: run what was due by then."""
        due, self.due = self.due, []
        for _, callback in due:
            callback()


async def test_a_flood_of_refusals_is_logged_once_then_summarised_while_it_lasts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="channels.intake.admission")
    timers = ManualTimers()
    admission = Admission(1, report_every=0.05, schedule=timers.schedule)
    with admission.slot():
        _refuse(admission, 1000)
        assert len(caplog.records) == 1, "the first refusal is news; the rest wait for the summary"
        assert [delay for delay, _ in timers.due] == [0.05]
        timers.fire()
        assert "refused 999 more" in caplog.records[-1].getMessage()
        _refuse(admission, 3)
        timers.fire()
        assert "refused 3 more" in caplog.records[-1].getMessage()
        timers.fire()  # a quiet period ends the summaries
        count = len(caplog.records)
        assert count == 3
        assert timers.due == []
        _refuse(admission, 1)
        assert len(caplog.records) == count + 1 and "refusing more with 503" in caplog.records[-1].getMessage()
    assert admission.refused == 1004
