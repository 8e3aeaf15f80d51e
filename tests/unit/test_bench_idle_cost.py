"""`python -m bench.idle_cost` runs and prints its figures as one JSON line (the command, not a speed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_the_idle_cost_benchmark_prints_one_json_line_with_its_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.idle_cost", "--rounds", "3"], capture_output=True, text=True, check=True
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["benchmark"] == "idle_cost" and figures["rounds"] == 3
    assert figures["back_to_back_us"] > 0
    gaps = figures["after_sleep_us_by_gap_ms"]
    assert set(gaps) == set(figures["ratio_after_sleep_by_gap_ms"]) == {"0.3", "1", "3", "10"}
    for gap, cpu_us in gaps.items():
        # The ratio is of the unrounded figures, printed to two places: within rounding of the printed ones.
        assert figures["ratio_after_sleep_by_gap_ms"][gap] == pytest.approx(
            cpu_us / figures["back_to_back_us"], rel=0.01, abs=0.006
        )


def test_a_round_count_below_one_is_refused_naming_the_option() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.idle_cost", "--rounds", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "--rounds" in done.stderr
