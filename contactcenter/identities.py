"""Identities: what a channel says about a sender, normalised (phone numbers to E.164 with `phonenumbers`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from pydantic import TypeAdapter, ValidationError

from contactcenter.errors import Invalid
from schema import IdentityKind, Interaction
from schema.text import Identifier


@dataclass(frozen=True)
class Identity:
    """A normalised identifier (E.164 phone, lower-cased email, visitor id) and whether the channel vouches for it."""

    kind: IdentityKind
    value: str
    verified: bool


def normalise_phone(raw: str, default_region: str, *, field: str = "From") -> str:
    """E.164 form of `raw`, read in `default_region` when it has no country code."""
    return _e164(raw, default_region, field)


# Customers come back, and each contact is read twice (at the edge, then by the router): parsing is the
# costly part, so the numbers seen lately are remembered. What does not parse raises, and is not remembered.
@lru_cache(maxsize=16384)
def _e164(raw: str, default_region: str, field: str) -> str:
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        # The value is not repeated: a customer's number, even mistyped, is theirs (the field names the place).
        raise Invalid("not a phone number", field=field) from exc
    if not phonenumbers.is_possible_number(number):
        raise Invalid("not a possible phone number", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_EMAIL: TypeAdapter[str] = TypeAdapter(Identifier)


def normalise_email(raw: str, *, field: str = "email") -> str:
    """The form an email address is kept in (trimmed, lower-cased); what no address holds (a NUL, a control
    character) is refused naming `field`."""
    try:
        return _EMAIL.validate_python(raw.strip().lower())
    except ValidationError:
        raise Invalid("not an email address", field=field) from None


def sender_identity(interaction: Interaction, default_region: str) -> Identity:
    """Whom the contact is filed under: the sender as the kind of identity its adapter says it is (`sender_kind`),
    normalised — or the client whose conversation it answers (`thread_address`), which it never verifies."""
    kind, raw = interaction.sender_kind, interaction.thread_address or interaction.from_address
    verified = interaction.from_verified and not interaction.thread_address
    if kind is IdentityKind.PHONE:
        value = normalise_phone(raw, default_region)
    elif kind is IdentityKind.EMAIL:
        value = normalise_email(raw)
    else:
        value = raw
    return Identity(kind, value, verified)
