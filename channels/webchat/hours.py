"""When the chat is open (`CC_CHAT_HOURS`, in `CC_CHAT_TIMEZONE`): outside them the widget says so and offers to
leave a message. Written as `mon-fri 09:00-17:00; sat 10:00-14:00` — days (a day or a range, Monday first) and
a time range, parts separated by `;`. Unset: always open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"^\s*(\w{3})(?:\s*-\s*(\w{3}))?\s+(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")


@dataclass(frozen=True)
class _Opening:
    days: frozenset[int]
    opens: time
    closes: time


class OpeningHours:
    def __init__(self, openings: tuple[_Opening, ...], zone: ZoneInfo) -> None:
        self._openings = openings
        self._zone = zone

    @classmethod
    def parse(cls, text: str | None, zone_name: str) -> OpeningHours | None:
        """The hours `text` writes, or None (always open) when unset; `ValueError` saying what is wrong."""
        zone = ZoneInfo(zone_name)
        if text is None or not text.strip():
            return None
        return cls(tuple(_opening(part) for part in text.split(";") if part.strip()), zone)

    def open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(self._zone)
        now = local.time()
        return any(local.weekday() in o.days and o.opens <= now < o.closes for o in self._openings)


def _opening(part: str) -> _Opening:
    match = _PART.match(part.lower())
    if match is None:
        raise ValueError(f"{part.strip()!r} is not like 'mon-fri 09:00-17:00'")
    first, last, *clock = match.groups()
    if first not in DAYS or (last is not None and last not in DAYS):
        raise ValueError(f"{part.strip()!r}: days are {', '.join(DAYS)}")
    start, end = DAYS.index(first), DAYS.index(last or first)
    if end < start:
        raise ValueError(f"{part.strip()!r}: a range of days goes from Monday towards Sunday")
    hours = [int(value) for value in clock]
    if hours[0] > 23 or hours[2] > 24 or hours[1] > 59 or hours[3] > 59:
        raise ValueError(f"{part.strip()!r}: not a time of day")
    opens = time(hours[0], hours[1])
    closes = time.max if (hours[2], hours[3]) == (24, 0) else time(min(hours[2], 23), hours[3])
    if hours[2] == 24 and hours[3] != 0:
        raise ValueError(f"{part.strip()!r}: not a time of day")
    if closes <= opens:
        raise ValueError(f"{part.strip()!r}: it closes before it opens")
    return _Opening(frozenset(range(start, end + 1)), opens, closes)
