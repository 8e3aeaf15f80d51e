"""Phone numbers are normalised to E.164 so one caller is one identity, however the number was written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactcenter.errors import Invalid
from contactcenter.identities import (
    identity_value,
    normalise_email,
    normalise_phone,
    phone_identity,
    read_phone,
    sender_identity,
)
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


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("+1 415 555 0100 ext. 12", "+14155550100;ext=12"),
        ("(415) 555-0100 x12", "+14155550100;ext=12"),
        ("+14155550100", "+14155550100"),
        ("611", "611"),
    ],
)
def test_an_extension_and_a_short_code_are_kept_apart_from_the_line(given: str, kept: str) -> None:
    assert phone_identity(given, "US") == kept


@pytest.mark.parametrize(
    ("sender", "kept"),
    [
        ("ACME", "ACME"),
        ("  Bank-Alert ", "Bank-Alert"),
        ("555-0199-not-a-number", "555-0199-not-a-number"),
        ("", "unknown"),
    ],
)
def test_a_contact_s_sender_that_is_no_number_is_recorded_as_given_never_refused(sender: str, kept: str) -> None:
    assert read_phone(sender, "US") == kept


@given(st.text(max_size=40))
def test_reading_any_sender_gives_a_value_and_reads_it_again_the_same(text: str) -> None:
    kept = read_phone(text, "US")
    assert kept and read_phone(kept, "US") == kept


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (" Dana.Scully+fbi@Example.COM ", "dana.scully+fbi@example.com"),  # no provider-specific rewriting
        ("dana@EXAMPLE.com", "dana@example.com"),
        ("zoë@bücher.de", "zoë@bücher.de"),
    ],
)
def test_emails_take_email_validator_s_normal_form(given: str, kept: str) -> None:
    assert normalise_email(given) == kept


@pytest.mark.parametrize("garbage", ["no-at-sign", "dana@@example.com", "dana\x00@example.com", "Dana <d@example.com>"])
def test_what_is_no_email_address_is_refused_naming_the_field(garbage: str) -> None:
    with pytest.raises(Invalid) as refused:
        identity_value(IdentityKind.EMAIL, garbage, "US", field="value")
    assert refused.value.field == "value"
