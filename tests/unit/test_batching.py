"""The group-commit batcher: alone when idle, together under load, every caller its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from contactcenter.batching import Batcher
from contactcenter.logs import current_log_context, log_context


class Recorder:
    """A batch runner that records the batches it saw and can be held at the door."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        await self.gate.wait()
        return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in items]


async def test_an_idle_batcher_sends_a_call_alone_at_once() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.run)
    assert await batcher.call(2) == 20
    assert await batcher.call(4) == 40
    assert recorder.batches == [[2], [4]]


async def test_calls_that_wait_for_a_busy_lane_leave_together_in_order() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = Batcher(recorder.run, lanes=1)
    first = asyncio.create_task(batcher.call(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.call(n)) for n in (2, 4, 6, 8)]
    await asyncio.sleep(0)
    recorder.gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [20, 40, 60, 80]
    assert recorder.batches == [[0], [2, 4, 6, 8]]


async def test_each_free_lane_sends_at_once_and_the_rest_wait_together() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = Batcher(recorder.run, lanes=2)
    calls = []
    for n in (0, 2, 4, 6):
        calls.append(asyncio.create_task(batcher.call(n)))
        await asyncio.sleep(0)
    recorder.gate.set()
    assert await asyncio.gather(*calls) == [0, 20, 40, 60]
    assert recorder.batches == [[0], [2], [4, 6]]


async def test_a_batch_never_exceeds_its_limit() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = Batcher(recorder.run, lanes=1, max_batch=2)
    calls = [asyncio.create_task(batcher.call(n)) for n in (0, 2, 4, 6, 8)]
    await asyncio.sleep(0)
    recorder.gate.set()
    await asyncio.gather(*calls)
    assert recorder.batches == [[0, 2], [4, 6], [8]]


async def test_a_failing_call_fails_alone() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = Batcher(recorder.run, lanes=1)
    first = asyncio.create_task(batcher.call(0))
    await asyncio.sleep(0)
    good, bad = asyncio.create_task(batcher.call(2)), asyncio.create_task(batcher.call(3))
    await asyncio.sleep(0)
    recorder.gate.set()
    assert await first == 0
    assert await good == 20
    with pytest.raises(ValueError, match="odd 3"):
        await bad
    assert recorder.batches[1] == [2, 3]


async def test_a_failed_round_trip_fails_every_call_in_it_and_the_batcher_goes_on() -> None:
    failing = True

    async def run(items: list[int]) -> list[int]:
        if failing:
            raise ConnectionError("the server went away")
        return items

    batcher = Batcher(run, lanes=1)
    calls = [asyncio.create_task(batcher.call(n)) for n in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    failing = False
    assert await batcher.call(7) == 7


async def test_a_caller_that_gave_up_before_its_batch_left_is_not_run() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = Batcher(recorder.run, lanes=1)
    first = asyncio.create_task(batcher.call(0))
    await asyncio.sleep(0)
    abandoned, kept = asyncio.create_task(batcher.call(2)), asyncio.create_task(batcher.call(4))
    await asyncio.sleep(0)
    abandoned.cancel()
    recorder.gate.set()
    assert await first == 0
    assert await kept == 40
    assert recorder.batches == [[0], [4]]


async def test_a_runner_answering_the_wrong_number_of_results_fails_its_callers_instead_of_hanging() -> None:
    async def run(items: list[int]) -> list[int]:
        return items[:-1]

    batcher = Batcher(run)
    with pytest.raises(AssertionError, match="answered 0 results"):
        await asyncio.wait_for(batcher.call(1), timeout=5)


def test_a_batcher_needs_a_lane() -> None:
    async def run(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match="lane"):
        Batcher(run, lanes=0)


async def test_a_call_unanswered_within_the_timeout_fails_and_one_waiting_for_a_lane_is_never_run() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batcher = Batcher(recorder.run, lanes=1, timeout=0.05)
    stuck = asyncio.create_task(batcher.call(2))
    await asyncio.sleep(0)
    behind = asyncio.create_task(batcher.call(4))
    with pytest.raises(TimeoutError):
        await stuck
    with pytest.raises(TimeoutError):
        await behind
    recorder.gate.set()
    # The timer is set again for the calls that come later; those answered in time are answered.
    assert await batcher.call(6) == 60
    assert await asyncio.gather(*(batcher.call(n) for n in (8, 10))) == [80, 100]
    assert 4 not in [n for batch in recorder.batches for n in batch]


async def test_calls_answered_in_time_never_see_the_timeout() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.run, timeout=0.05)
    for n in range(5):
        assert await batcher.call(2 * n) == 20 * n
    await asyncio.sleep(0.1)  # the timer fires over calls long answered
    assert await batcher.call(12) == 120


async def test_a_batch_is_not_logged_as_the_contact_of_the_caller_that_started_its_lane() -> None:
    seen: list[Mapping[str, str]] = []

    async def run(items: list[int]) -> Sequence[int]:
        seen.append(current_log_context())
        return items

    batcher = Batcher(run)
    with log_context(interaction_id="the-first-caller"):
        assert await batcher.call(1) == 1
    assert seen == [{}]
