"""`python -m bench.idle_cost`: what one contact's worth of Python costs when the process had just slept,
against the same work back to back — the machine's price for being idle, which the service pays on every
contact below saturation.

On the project's 2-core virtual machine the same work cost more CPU after a sleep than back to back, the
longer the sleep the dearer, and more too when the gap was spent spinning instead: most of the price is the
idle vCPU's (cold caches, whatever the host ran meanwhile), not the wake-up's system calls. This is why the
end-to-end benchmark's CPU per contact below saturation is several times what it is at the ceiling, where
processes rarely sleep. The figures: docs/performance.md, "Figures behind choices in the code".

Prints one JSON line: CPU µs per unit of work back to back, after each sleep, and after a spun gap, with the
ratios to back to back.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from schema import Channel, IdentityKind, Interaction

GAPS_S = (0.0003, 0.001, 0.003, 0.01)


def _unit_of_work() -> Callable[[], None]:
    """Roughly what a process does with one contact: parse and validate it, render it again."""
    raw = Interaction(
        channel=Channel.SMS,
        provider_id="SM0123456789abcdef0123456789abcdef",
        from_address="+15550100000",
        sender_kind=IdentityKind.PHONE,
        to_address="+15550199999",
        from_verified=True,
        body="Hello, I have a question about my order. " * 2,
        received_at=datetime.now(UTC),
    ).model_dump_json()

    def work() -> None:
        for _ in range(20):
            json.loads(Interaction.model_validate_json(raw).model_dump_json())

    return work


def _cpu_us(work: Callable[[], None], rounds: int, between: Callable[[], None] | None) -> float:
    """CPU of this thread per `work()`, the time `between` takes not counted."""
    spent = 0.0
    for _ in range(rounds):
        started = time.thread_time()
        work()
        spent += time.thread_time() - started
        if between is not None:
            between()
    return spent / rounds * 1e6


def _spin(seconds: float) -> Callable[[], None]:
    def spin() -> None:
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            pass

    return spin


def _sleep(seconds: float) -> Callable[[], None]:
    return lambda: time.sleep(seconds)


def measure(rounds: int) -> dict[str, object]:
    work = _unit_of_work()
    _cpu_us(work, max(1, rounds // 10), None)  # warm up: imports, caches, pydantic's validators
    hot = _cpu_us(work, rounds, None)
    after_sleep = {f"{gap * 1000:g}": _cpu_us(work, rounds, _sleep(gap)) for gap in GAPS_S}
    after_spin = _cpu_us(work, rounds, _spin(0.003))
    return {
        "benchmark": "idle_cost",
        "rounds": rounds,
        "back_to_back_us": round(hot, 1),
        "after_sleep_us_by_gap_ms": {gap: round(us, 1) for gap, us in after_sleep.items()},
        "after_3ms_spin_us": round(after_spin, 1),
        "ratio_after_sleep_by_gap_ms": {gap: round(us / hot, 2) for gap, us in after_sleep.items()},
        "ratio_after_3ms_spin": round(after_spin / hot, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000, help="units of work per measurement")
    arguments = parser.parse_args()
    if arguments.rounds < 1:
        parser.error("--rounds must be at least 1")
    print(json.dumps(measure(arguments.rounds)))


if __name__ == "__main__":
    main()
