"""The benches' one percentile (`bench.report.percentile`), which every bench's figures are read with."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from bench.report import percentile


def test_a_percentile_is_one_of_the_values_by_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 1 to 100, in no order of use
    assert (percentile(values, 0.0), percentile(values, 0.5), percentile(values, 0.99)) == (1.0, 51.0, 100.0)
    assert percentile(values, 1.0) == 100.0
    assert math.isnan(percentile([], 0.5))


@given(st.lists(st.floats(allow_nan=False), min_size=1), st.floats(min_value=0, max_value=1))
def test_a_percentile_lies_between_the_smallest_and_the_largest(values: list[float], q: float) -> None:
    assert percentile(values, q) in values
    assert min(values) <= percentile(values, q) <= max(values)
