"""What a caller's answer to a menu chooses, and whether the number is open: pure decisions on a `VoiceMenu`."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime

from schema.voice import MenuOption, VoiceMenu

_WORD = re.compile(r"[^\W_]+")


def chosen_option(menu: VoiceMenu, digits: str, speech: str) -> MenuOption | None:
    """The option of the key pressed, else the first whose words the caller said; None: not a choice."""
    digits = digits.strip()
    if digits:
        return next((option for option in menu.options if option.digit == digits), None)
    said = set(_WORD.findall(speech.casefold()))
    for option in menu.options:
        if any(set(_WORD.findall(word.casefold())) <= said for word in option.words if word.strip()):
            return option
    return None


def is_open(menu: VoiceMenu, now: datetime) -> bool:
    """Open at `now` (an aware time) in the menu's time zone; a menu without hours is always open."""
    if not menu.hours:
        return True
    local = now.astimezone(zoneinfo.ZoneInfo(menu.time_zone))
    clock = local.strftime("%H:%M")
    spans = menu.hours.get(str(local.isoweekday()), [])
    return any(start <= clock < end for start, end in spans)
