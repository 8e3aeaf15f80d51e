"""An interaction: one contact in or out on one channel, as the channel adapters publish it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

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


class Interaction(BaseModel):
    """What an adapter knows about a contact. `provider_id` (Twilio's MessageSid, a Message-ID, ...) is the
    idempotency key: the same contact delivered twice is stored once."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    channel: Channel
    direction: Direction = Direction.INBOUND
    provider_id: Identifier = Field(min_length=1, max_length=200)
    from_address: Identifier = Field(min_length=1, max_length=320)
    to_address: Identifier = Field(default="", max_length=320)
    # Whether the channel vouches for `from_address` (a carrier's caller id, DMARC-aligned mail).
    from_verified: bool = False
    body: StorableText = Field(default="", max_length=100_000)
    received_at: datetime
