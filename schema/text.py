"""Text PostgreSQL can store: every text field of a model that is stored or crosses an edge is one of these.

PostgreSQL's `text` cannot hold NUL (U+0000), and a lone surrogate cannot be encoded as UTF-8 at all: either
would be acknowledged at the edge and then fail in the router, again and again, until it rests in the
dead-letter queue. Refused here instead, a pydantic ValidationError names the field at the edge (a 400).
Messages never repeat the value: it may be a customer's words.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator

# C0 and C1 control characters and DEL: no identifier (a MessageSid, a phone number, an address) holds one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain lone surrogates (U+D800 to U+DFFF)") from None
    return value


def _identifier(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return _storable(value)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Europe/Paris") from None
    return value


def storable(value: str) -> str:
    """`value` with each NUL replaced by U+FFFD, the replacement character: a customer's words are kept
    rather than refused for a byte their phone sent. Lone surrogates stay: `StorableText` refuses them."""
    return value.replace("\x00", "\ufffd")


StorableText = Annotated[str, AfterValidator(_storable)]
"""Any text PostgreSQL can store: no NUL, no lone surrogate."""

Identifier = Annotated[str, AfterValidator(_identifier)]
"""An identifier from outside (a provider's id, an address): storable and free of control characters."""

DisplayName = Annotated[str, AfterValidator(_storable), AfterValidator(_not_blank)]
"""A name a person reads: storable and not only whitespace."""

TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""The name of an IANA time zone this machine knows (`Europe/Paris`)."""
