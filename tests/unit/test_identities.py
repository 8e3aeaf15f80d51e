"""Phone numbers are normalised to E.164 so one caller is one identity, however the number was written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactcenter.errors import Invalid
from contactcenter.identities import normalise_phone, sender_identity
from schema import Channel, IdentityKind, Interaction


@pytest.mark.parametrize(
    "written", ["+14155550134", "(415) 555-0134", "415.555.0134", "+1 415 555 0134", "1-415-555-0134"]
)
def test_us_numbers_written_any_way_are_one_e164_number(written: str) -> None:
    assert normalise_phone(written, "US") == "+14155550134"


def test_a_number_with_a_country_code_ignores_the_default_region() -> None:
    assert normalise_phone("+44 20 7946 0958", "US") == "+442079460958"
    assert normalise_phone("020 7946 0958", "GB") == "+442079460958"


@pytest.mark.parametrize("garbage", ["", "hello", "+", "12", "not-a-number"])
def test_what_is_no_phone_number_is_refused_naming_the_field(garbage: str) -> None:
    with pytest.raises(Invalid) as refused:
        normalise_phone(garbage, "US", field="phone")
    assert refused.value.field == "phone"


@given(st.text(max_size=40))
def test_normalising_anything_either_gives_e164_or_refuses(text: str) -> None:
    try:
        normalised = normalise_phone(text, "US")
    except Invalid:
        return
    assert normalised.startswith("+")
    assert normalised[1:].isdigit()
    assert normalise_phone(normalised, "US") == normalised


def test_email_identities_are_lower_cased() -> None:
    interaction = Interaction(
        channel=Channel.EMAIL,
        provider_id="<1@example.com>",
        from_address=" Ann@Example.COM ",
        sender_kind=IdentityKind.EMAIL,
        received_at=datetime.now(UTC),
    )
    identity = sender_identity(interaction, "US")
    assert (identity.kind, identity.value) == (IdentityKind.EMAIL, "ann@example.com")
