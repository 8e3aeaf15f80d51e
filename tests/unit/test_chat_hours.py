"""The chat's opening hours (`CC_CHAT_HOURS`): read as written, in their time zone; what is not hours is refused
saying why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.webchat.hours import OpeningHours

# 2026-11-30 is a Monday.
MONDAY_NOON_UTC = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_unset_hours_mean_always_open() -> None:
    assert OpeningHours.parse(None, "UTC") is None
    assert OpeningHours.parse("  ", "UTC") is None


@pytest.mark.parametrize(
    ("hours", "zone", "moment", "open_now"),
    [
        ("mon-fri 09:00-17:00", "UTC", MONDAY_NOON_UTC, True),
        ("mon-fri 09:00-12:00", "UTC", MONDAY_NOON_UTC, False),  # it closes at noon
        ("tue-fri 09:00-17:00; sat 10:00-14:00", "UTC", MONDAY_NOON_UTC, False),
        ("mon 00:00-24:00", "UTC", MONDAY_NOON_UTC.replace(hour=23, minute=59, second=59), True),
        # Noon in UTC is 21:00 in Tokyo: closed there at 17:00.
        ("mon-fri 09:00-17:00", "Asia/Tokyo", MONDAY_NOON_UTC, False),
        ("MON-FRI 09:00 - 17:00", "Europe/Oslo", MONDAY_NOON_UTC, True),
    ],
)
def test_open_within_the_hours_in_their_time_zone(hours: str, zone: str, moment: datetime, open_now: bool) -> None:
    parsed = OpeningHours.parse(hours, zone)
    assert parsed is not None and parsed.open_at(moment) is open_now


@pytest.mark.parametrize(
    "hours",
    ["weekdays 9-5", "fri-mon 09:00-17:00", "mon 17:00-09:00", "mon 25:00-26:00", "xyz 09:00-10:00", "mon 09:00-24:30"],
)
def test_what_is_not_hours_is_refused(hours: str) -> None:
    with pytest.raises(ValueError):
        OpeningHours.parse(hours, "UTC")
