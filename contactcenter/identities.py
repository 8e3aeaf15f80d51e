"""Identities: what a channel says about a sender, normalised (phone numbers to E.164 with `phonenumbers`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from contactcenter.errors import Invalid
from schema import Channel, IdentityKind, Interaction


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
        raise Invalid(f"not a phone number: {raw!r}", field=field) from exc
    if not phonenumbers.is_possible_number(number):
        raise Invalid(f"not a possible phone number: {raw!r}", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sender_identity(interaction: Interaction, default_region: str) -> Identity:
    if interaction.channel in (Channel.SMS, Channel.VOICE):
        value = normalise_phone(interaction.from_address, default_region)
        return Identity(IdentityKind.PHONE, value, interaction.from_verified)
    if interaction.channel is Channel.EMAIL:
        return Identity(IdentityKind.EMAIL, interaction.from_address.strip().lower(), interaction.from_verified)
    return Identity(IdentityKind.VISITOR, interaction.from_address, interaction.from_verified)
