"""Our own token in a reply's address: a customer whose mail client drops `In-Reply-To` and `References`
still answers to `support+cc-<id>@our.domain` (the reply's `Reply-To`), which names our reply's Message-ID
(`cc-<id>@our.domain`), and so the conversation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

_TOKEN = re.compile(r"^[^+@]+\+(cc-[0-9a-f]{32})@([^@]+)$")


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
