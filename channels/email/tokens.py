"""Our own token in a reply's address and subject: a customer whose mail client drops `In-Reply-To` and
`References` still answers to `support+cc-<id>@our.domain` (the reply's `Reply-To`), or, when it drops that
too, under the subject `Re: … [#cc-<id>]`; either names our reply's Message-ID (`cc-<id>@our.domain`), and so
the conversation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

_TOKEN = re.compile(r"^[^+@]+\+(cc-[0-9a-f]{32})@([^@]+)$")
_SUBJECT_TOKEN = re.compile(r"\s*\[#(cc-[0-9a-f]{32})\]", re.IGNORECASE)
# `Re: RE: Aw: ` as mail clients stack them: one `Re: ` is written instead.
_REPLY_PREFIXES = re.compile(r"^(?:\s*(?:re|aw|sv)\s*:\s*)+", re.IGNORECASE)
MAX_SUBJECT = 998


def reply_message_id(domain: str) -> str:
    """A Message-ID of our domain for a reply, without angle brackets: its local part is the token."""
    return f"cc-{uuid.uuid4().hex}@{domain}"


def base_address(address: str) -> str:
    """`support+anything@our.domain` as `support@our.domain`: the address a conversation is held at."""
    local, _, domain = address.rpartition("@")
    return f"{local.partition('+')[0]}@{domain}" if local else address


def reply_to(our_address: str, message_id: str) -> str:
    """Where the customer's answer to our reply `message_id` goes: our address, tagged with the token."""
    local, _, domain = base_address(our_address).rpartition("@")
    return f"{local}+{message_id.partition('@')[0]}@{domain}"


def answered_ids(recipients: Iterable[str]) -> list[str]:
    """The Message-IDs of our replies that tagged recipients answer."""
    found = []
    for recipient in recipients:
        match = _TOKEN.match(recipient.lower())
        if match:
            found.append(f"{match.group(1)}@{match.group(2)}")
    return found


def reply_subject(their_subject: str, message_id: str) -> str:
    """`Re: <their subject> [#<token>]`: the token of this reply only (any older one dropped), never cut off."""
    subject = _REPLY_PREFIXES.sub("", _SUBJECT_TOKEN.sub("", their_subject).strip())
    subject = f"Re: {subject}" if subject else "Re: your message"
    token = f" [#{message_id.partition('@')[0]}]"
    return subject[: MAX_SUBJECT - len(token)] + token


def subject_ids(subject: str, recipients: Iterable[str]) -> list[str]:
    """The Message-IDs of our replies whose tokens the subject carries, at the domains it was sent to."""
    domains = dict.fromkeys(r.rpartition("@")[2].lower() for r in recipients if "@" in r)
    return [f"{token.lower()}@{domain}" for token in _SUBJECT_TOKEN.findall(subject) for domain in domains]
