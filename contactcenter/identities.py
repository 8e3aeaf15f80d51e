"""Identities: what a channel or an agent says about a client, in the one form it is kept and looked up in.

Phones become E.164 with `phonenumbers` (an extension kept as `;ext=`, a short code as its digits); emails take
the form `email-validator` gives them, lower-cased. A contact's sender is always recorded — an alphanumeric
sender or a number that does not parse is kept as given (the card flags it, `cc_identity_flags`) — while an
identifier typed into the API must be one of the forms above (400 naming the field otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import TypeAdapter, ValidationError

from contactcenter.errors import Invalid
from schema import IdentityKind, Interaction
from schema.text import Identifier


@dataclass(frozen=True)
class Identity:
    """A normalised identifier (E.164 phone, email address, visitor id, external id) and whether the channel
    vouches for it."""

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


def phone_identity(raw: str, default_region: str, *, field: str = "phone") -> str:
    """The kept form of a phone identifier given to the API: E.164, E.164 with `;ext=` and the extension (a
    person behind a switchboard), or a short code's digits. Anything else is refused naming `field`."""
    return _phone_identity(raw.strip(), default_region, field)


@lru_cache(maxsize=16384)
def _phone_identity(raw: str, default_region: str, field: str) -> str:
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise Invalid("not a phone number", field=field) from exc
    if phonenumbers.is_possible_number(number):
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return f"{e164};ext={number.extension}" if number.extension else e164
    digits = raw.lstrip("#*")
    if digits.isdigit() and phonenumbers.is_possible_short_number_for_region(number, default_region):
        return digits
    raise Invalid("not a possible phone number", field=field)


def read_phone(raw: str, default_region: str) -> str:
    """A contact's sender as a phone identity, never refused: what `phone_identity` reads, else the sender as
    given (trimmed; `unknown` for nothing). The card flags what it is (migration 016, `cc_identity_flags`)."""
    given = raw.strip()
    try:
        return phone_identity(given, default_region)
    except Invalid:
        pass
    return given or "unknown"


_EMAIL: TypeAdapter[str] = TypeAdapter(Identifier)


def normalise_email(raw: str, *, field: str = "email") -> str:
    """The form an email address is kept in: `email-validator`'s normalised address (Unicode NFC, the domain
    in its canonical form), lower-cased; no provider-specific rewriting (dots and `+tags` stay). What is no
    address is refused naming `field`."""
    try:
        _EMAIL.validate_python(raw)
        address = validate_email(
            raw.strip(),
            check_deliverability=False,
            allow_smtputf8=True,
            globally_deliverable=False,  # a local or test domain (`localhost`, `.test`) is still an address
            allow_domain_literal=True,
            test_environment=True,
        )
    except (ValidationError, EmailNotValidError):
        raise Invalid("not an email address", field=field) from None
    return address.normalized.lower()


def read_email(raw: str) -> str:
    """A contact's sender as an email identity, never refused: the normalised address, else the sender as
    given, trimmed and lower-cased."""
    try:
        return normalise_email(raw)
    except Invalid:
        return raw.strip().lower() or "unknown"


def identity_value(kind: IdentityKind, raw: str, default_region: str, *, field: str = "value") -> str:
    """The kept form of an identifier of `kind` given to the API, or `Invalid` naming `field`."""
    if kind is IdentityKind.PHONE:
        return phone_identity(raw, default_region, field=field)
    if kind is IdentityKind.EMAIL:
        return normalise_email(raw, field=field)
    try:
        value = _EMAIL.validate_python(raw.strip())
    except ValidationError:
        raise Invalid("must not contain control characters, NUL or lone surrogates", field=field) from None
    if not value or len(value) > 200:
        raise Invalid("must hold 1 to 200 characters", field=field)
    return value


def sender_identity(interaction: Interaction, default_region: str) -> Identity:
    """Whom the contact is filed under: the sender as the kind of identity its adapter says it is (`sender_kind`),
    in its kept form — or the client whose conversation it answers (`thread_address`), which it never verifies.
    Never refused: a contact that arrived is recorded, on a card of its sender however it wrote itself."""
    kind, raw = interaction.sender_kind, interaction.thread_address or interaction.from_address
    verified = interaction.from_verified and not interaction.thread_address
    if kind is IdentityKind.PHONE:
        value = read_phone(raw, default_region)
    elif kind is IdentityKind.EMAIL:
        value = read_email(raw)
    else:
        value = raw
    return Identity(kind, value, verified)
