"""An interaction: one contact in or out on one channel, as the channel adapters publish it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from schema.text import Identifier, StorableText


class Channel(StrEnum):
    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"
    CHAT = "chat"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class IdentityKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    VISITOR = "visitor"
    EXTERNAL = "external"  # another system's customer number (an ERP's, a dealer system's)


class Interaction(BaseModel):
    """What an adapter knows about a contact. `provider_id` (Twilio's MessageSid, a Message-ID, ...) is the
    idempotency key: the same contact delivered twice is stored once."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    channel: Channel
    direction: Direction = Direction.INBOUND
    provider_id: Identifier = Field(min_length=1, max_length=200)
    from_address: Identifier = Field(min_length=1, max_length=320)
    # What kind of identity `from_address` is, as the adapter that heard it says: the router resolves the card
    # by it, never by the channel's name.
    sender_kind: IdentityKind
    to_address: Identifier = Field(default="", max_length=320)
    # Whether the channel vouches for `from_address` (a carrier's caller id, DMARC-aligned mail).
    from_verified: bool = False
    # The address of the client whose conversation this contact answers, when the channel knows it and it is
    # not the sender's (a mail whose In-Reply-To names a message of that conversation, a bounce of our reply):
    # the contact is filed on that client's card. A claim: the sender's own address never joins that card.
    thread_address: Identifier = Field(default="", max_length=320)
    body: StorableText = Field(default="", max_length=100_000)
    received_at: datetime


# The sender's kind of an interaction that does not say it: one published by an adapter before `sender_kind`
# existed (in flight during a rolling upgrade), or one stored in PostgreSQL, whose interactions table does not
# keep it. Remove the first use when no such message can be in flight; the second goes with a column (see
# docs/adding-a-channel.md). The one place that maps a channel's name to its sender's kind: an adapter sets
# `sender_kind` itself, but a new word of `Channel` needs its line here until the column exists (a unit test,
# tests/unit/test_channel_seam.py, says so before its stored contacts fail to read back).
SENDER_KINDS_BEFORE_ISSUE_14 = MappingProxyType(
    {
        Channel.VOICE: IdentityKind.PHONE,
        Channel.SMS: IdentityKind.PHONE,
        Channel.EMAIL: IdentityKind.EMAIL,
        Channel.CHAT: IdentityKind.VISITOR,
    }
)
