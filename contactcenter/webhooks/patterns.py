"""A webhook's event type patterns (AMQP topic-like, on the routing key: `*` one word, `#` any number of them)
as one regular expression, which PostgreSQL and Python read alike, matched against `.` + the routing key."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Each word of the key is matched with the dot before it, so `#` (no words or several) needs no special case.
_WORD = r"\.[^.]+"


def types_regex(patterns: Sequence[str]) -> str:
    """One regular expression for all `patterns` (validated by `schema.webhooks.EventTypePattern`: words are
    plain, so no escaping is needed)."""
    alternatives = ["".join(_word_regex(word) for word in pattern.split(".")) for pattern in patterns]
    return "^(" + "|".join(alternatives) + ")$"


def _word_regex(word: str) -> str:
    if word == "*":
        return _WORD
    if word == "#":
        return f"({_WORD})*"
    return r"\." + word


def matches(regex: str, routing_key: str) -> bool:
    return re.match(regex, "." + routing_key) is not None
