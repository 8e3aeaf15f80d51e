"""Duplicate suggestions' scoring: FEBRL-like typos score as one person with readable reasons; two people who
share only a common surname do not."""

from __future__ import annotations

from contactcenter.matching import SUGGEST_FROM, Person, blocking_keys, likeness

DANA = Person("dana", "scully", "1964-02-23", "12 main street", "annapolis", "21401", frozenset({"+14155550161"}))


def test_a_typo_in_each_of_two_fields_is_still_the_same_person_with_the_reasons() -> None:
    typo = Person("dana", "scuily", "1964-02-28", "12 main street", "annapolis", "21401")
    alike = likeness(DANA, typo)
    assert alike.score >= 0.99
    assert alike.reasons == (
        "similar surname",
        "same given name",
        "date of birth differs by one digit",
        "same street address",
        "same city",
        "same postcode",
    )


def test_same_surname_and_birth_date_with_a_phone_one_digit_off_is_suggested() -> None:
    other = Person("dana", "scully", "1964-02-23", phones=frozenset({"+14155550162"}))
    alike = likeness(DANA, other)
    assert alike.score >= SUGGEST_FROM
    assert "phone differs by one digit" in alike.reasons


def test_two_people_sharing_a_surname_and_a_city_are_not_suggested() -> None:
    other = Person("william", "scully", "1931-07-04", "5 elm road", "annapolis", "21403")
    assert likeness(DANA, other).score < SUGGEST_FROM


def test_what_neither_card_says_counts_for_nothing() -> None:
    assert likeness(Person(), Person()).score < SUGGEST_FROM
    assert likeness(Person(surname="scully"), Person(surname="scully")).score < SUGGEST_FROM


def test_cards_with_a_typo_in_the_surname_still_meet_in_a_block() -> None:
    typo = Person("dana", "scullly", "1964-02-23")
    assert set(blocking_keys(DANA)) & set(blocking_keys(typo))
