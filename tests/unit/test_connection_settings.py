"""The connection deadlines and the per-client cap refuse values that would switch them off or stop everything."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contactcenter.settings import Settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("header_read_seconds", 0),
        ("body_read_seconds", -1),
        ("idle_connection_seconds", 0),
        ("max_connections_per_client", 0),
    ],
)
def test_a_deadline_or_cap_that_is_not_positive_is_refused(name: str, value: float) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **{name: value})  # type: ignore[arg-type]  # the field is named at run time
    assert refused.value.errors()[0]["loc"] == (name,)
