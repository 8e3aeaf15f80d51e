"""An interaction: one contact in or out on one channel, as the channel adapters publish it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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


_INTERACTIONS = TypeAdapter(list[Interaction])


def inbound_message(interactions: Sequence[Interaction]) -> bytes:
    """The body of a message on the interactions exchange: one interaction as a JSON object, several (of one
    channel, published together) as a JSON array of them."""
    if len(interactions) == 1:
        return interactions[0].model_dump_json().encode()
    return _INTERACTIONS.dump_json(list(interactions))


def read_inbound_message(body: bytes) -> list[Interaction]:
    """The interactions a message on the interactions exchange carries, either form; raise `ValidationError`
    on anything else."""
    if body.lstrip()[:1] == b"[":
        return _INTERACTIONS.validate_json(body)
    return [Interaction.model_validate_json(body)]
