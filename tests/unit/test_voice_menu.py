"""What a caller's answer to a menu chooses, and when a number is open: the decisions of `voice_menu`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from channels.twilio.voice_menu import chosen_option, is_open
from schema.voice import MenuOption, VoiceMenu

MENU = VoiceMenu(
    prompt="For sales press 1, for service press 2.",
    options=[
        MenuOption(digit="1", words=["sales", "buy a car"], queue="sales"),
        MenuOption(digit="2", words=["service"], queue="service"),
        MenuOption(digit="#", words=[], queue="questions"),
    ],
    time_zone="Europe/Paris",
    # Weekdays 09:00 to 12:00 and 14:00 to 18:00; Saturday morning; closed on Sunday.
    hours={
        **{day: [("09:00", "12:00"), ("14:00", "18:00")] for day in ("1", "2", "3", "4", "5")},
        "6": [("09:00", "12:00")],
    },
)


@pytest.mark.parametrize(
    ("digits", "speech", "queue"),
    [
        ("1", "", "sales"),
        ("2", "service please", "service"),  # the key decides when both come
        ("#", "", "questions"),
        ("", "I would like to BUY a car.", "sales"),
        ("", "my car needs Service!", "service"),
        ("7", "", None),  # no such key: the menu again
        ("", "hello", None),
        ("", "buy", None),  # half of "buy a car" is not what the option listens for
        ("", "", None),
    ],
)
def test_a_key_or_the_words_of_an_option_choose_it(digits: str, speech: str, queue: str | None) -> None:
    option = chosen_option(MENU, digits, speech)
    assert (option.queue if option else None) == queue


@given(st.text(), st.text())
def test_any_answer_is_a_choice_or_none_never_an_error(digits: str, speech: str) -> None:
    option = chosen_option(MENU, digits, speech)
    assert option is None or option in MENU.options


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (datetime(2026, 11, 30, 8, 30, tzinfo=UTC), True),  # Monday 09:30 in Paris (UTC+1)
        (datetime(2026, 11, 30, 11, 30, tzinfo=UTC), False),  # 12:30: lunch
        (datetime(2026, 11, 30, 16, 59, tzinfo=UTC), True),  # 17:59
        (datetime(2026, 11, 30, 17, 0, tzinfo=UTC), False),  # 18:00: the end of a span is closed
        (datetime(2026, 12, 5, 9, 0, tzinfo=UTC), True),  # Saturday 10:00
        (datetime(2026, 12, 6, 9, 0, tzinfo=UTC), False),  # Sunday: no hours that day
        (datetime(2026, 7, 6, 7, 30, tzinfo=UTC), True),  # a summer Monday 09:30 (UTC+2)
        (datetime(2026, 7, 6, 6, 30, tzinfo=UTC), False),  # 08:30 in summer
    ],
)
def test_opening_hours_are_read_in_the_menus_time_zone(at: datetime, open_: bool) -> None:
    assert is_open(MENU, at) is open_


def test_a_menu_without_hours_is_always_open() -> None:
    assert is_open(VoiceMenu(), datetime(2026, 12, 6, 3, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "hours",
    [{"0": [("09:00", "17:00")]}, {"1": [("9:00", "17:00")]}, {"1": [("24:00", "24:30")]}, {"1": [("10:00", "10:00")]}],
)
def test_hours_that_are_no_weekday_or_no_span_are_refused(hours: dict[str, list[tuple[str, str]]]) -> None:
    with pytest.raises(ValidationError) as refused:
        VoiceMenu(hours=hours)
    assert refused.value.errors()[0]["loc"] == ("hours",)
