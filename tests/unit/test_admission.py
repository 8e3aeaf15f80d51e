"""The admission bound: a 503 to retry past it, and refusals logged as a summary, not one line each."""

from __future__ import annotations

import asyncio
import logging

import pytest

from channels.admission import Admission
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


async def test_a_flood_of_refusals_is_logged_once_then_summarised_while_it_lasts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="channels.admission")
    admission = Admission(1, report_every=0.05)
    with admission.slot():
        _refuse(admission, 1000)
        assert len(caplog.records) == 1, "the first refusal is news; the rest wait for the summary"
        await asyncio.sleep(0.08)
        assert "refused 999 more" in caplog.records[-1].getMessage()
        _refuse(admission, 3)
        await asyncio.sleep(0.05)
        assert "refused 3 more" in caplog.records[-1].getMessage()
        await asyncio.sleep(0.15)  # a quiet period ends the summaries
        count = len(caplog.records)
        assert count == 3
        _refuse(admission, 1)
        assert len(caplog.records) == count + 1 and "refusing more with 503" in caplog.records[-1].getMessage()
    assert admission.refused == 1004
