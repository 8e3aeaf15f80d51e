"""Duplicate suggestions: how alike two cards' people are, Fellegi-Sunter style, with the reasons an agent reads.

Each field compared lands on an agreement level (agree, nearly, disagree; missing on either side says nothing),
and each level weighs log2(m/u): m the chance of that level between records of one person, u between two
people. The weights add up; with the prior odds of two cards in one block being one person, the sum is the
probability shown as `score`. String similarity is `rapidfuzz`'s Jaro-Winkler; blocking keys are
`jellyfish`'s metaphone of the surname, the birth date, the postcode with the initial, a phone's prefix
(docs/cards.md, "Duplicate suggestions"). The m and u below are set by hand from FEBRL's kinds of error;
`python -m bench.matching` measures the precision and recall they give there."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jellyfish
from rapidfuzz.distance import JaroWinkler, Levenshtein

# The prior: of the pairs that share a block, about one in a thousand are one person.
PRIOR_LOG2_ODDS = math.log2(1 / 1000)
# Shown to agents from this probability on.
SUGGEST_FROM = 0.5


@dataclass(frozen=True)
class Level:
    m: float
    u: float
    reason: str | None  # what an agent reads when this level counts for the match

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


@dataclass(frozen=True)
class Person:
    """What is compared of a card: its profile's fields (lower-cased, trimmed) and its phones (not shared)."""

    given_name: str | None = None
    surname: str | None = None
    date_of_birth: str | None = None  # YYYY-MM-DD
    street: str | None = None
    city: str | None = None
    postcode: str | None = None
    phones: frozenset[str] = field(default_factory=frozenset)


SURNAME = {
    "agree": Level(0.90, 0.002, "same surname"),
    "nearly": Level(0.06, 0.01, "similar surname"),
    "disagree": Level(0.04, 0.988, None),
}
GIVEN = {
    "agree": Level(0.88, 0.005, "same given name"),
    "nearly": Level(0.07, 0.02, "similar given name"),
    "disagree": Level(0.05, 0.975, None),
}
BIRTH = {
    "agree": Level(0.88, 0.0003, "same date of birth"),
    "nearly": Level(0.08, 0.003, "date of birth differs by one digit"),
    "disagree": Level(0.04, 0.9967, None),
}
STREET = {
    "agree": Level(0.80, 0.001, "same street address"),
    "nearly": Level(0.12, 0.005, "similar street address"),
    "disagree": Level(0.08, 0.994, None),
}
CITY = {
    "agree": Level(0.85, 0.01, "same city"),
    "nearly": Level(0.08, 0.01, None),
    "disagree": Level(0.07, 0.98, None),
}
POSTCODE = {
    "agree": Level(0.85, 0.005, "same postcode"),
    "nearly": Level(0.08, 0.02, "postcode differs by one digit"),
    "disagree": Level(0.07, 0.975, None),
}
PHONE = {
    "agree": Level(0.60, 0.00001, "same phone number"),
    "nearly": Level(0.10, 0.0005, "phone differs by one digit"),
    "disagree": Level(0.30, 0.99949, None),
}


@dataclass(frozen=True)
class Likeness:
    score: float
    reasons: tuple[str, ...]


def likeness(a: Person, b: Person) -> Likeness:
    """How likely `a` and `b` are one person, and why."""
    levels = [
        _level(SURNAME, _names(a.surname, b.surname)),
        _level(GIVEN, _names(a.given_name, b.given_name)),
        _level(BIRTH, _digits(a.date_of_birth, b.date_of_birth)),
        _level(STREET, _names(a.street, b.street)),
        _level(CITY, _names(a.city, b.city)),
        _level(POSTCODE, _digits(a.postcode, b.postcode)),
        _level(PHONE, _phones(a.phones, b.phones)),
    ]
    counted = [level for level in levels if level is not None]
    total = PRIOR_LOG2_ODDS + sum(level.weight for level in counted)
    score = 1 / (1 + 2 ** (-total)) if total > -60 else 0.0
    return Likeness(round(score, 4), tuple(level.reason for level in counted if level.reason and level.m > level.u))


def blocking_keys(person: Person) -> list[str]:
    """The blocks a card is in: only cards sharing one are compared."""
    keys = []
    if person.surname:
        keys.append("sn:" + jellyfish.metaphone(person.surname))
    if person.date_of_birth:
        keys.append("dob:" + person.date_of_birth)
    if person.postcode and person.given_name:
        keys.append(f"pc:{person.postcode}:{person.given_name[:1]}")
    keys += ["ph:" + phone[:-3] for phone in sorted(person.phones)]  # a digit off among the last three
    return keys


def _level(levels: dict[str, Level], agreement: str | None) -> Level | None:
    return None if agreement is None else levels[agreement]


def _names(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return None
    if a == b:
        return "agree"
    return "nearly" if JaroWinkler.similarity(a, b) >= 0.88 else "disagree"


def _digits(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return None
    if a == b:
        return "agree"
    return "nearly" if len(a) == len(b) and Levenshtein.distance(a, b) == 1 else "disagree"


def _phones(a: frozenset[str], b: frozenset[str]) -> str | None:
    if not a or not b:
        return None
    if a & b:
        return "agree"
    near = any(len(x) == len(y) and Levenshtein.distance(x, y) == 1 for x in a for y in b)
    return "nearly" if near else "disagree"
