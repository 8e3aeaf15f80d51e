"""The unified client card: one client, every identity, every contact on any channel."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from schema.interactions import Channel, Direction, IdentityKind


class ClientSummary(BaseModel):
    id: uuid.UUID
    display_name: str | None = None
    created_at: datetime


class IdentityView(BaseModel):
    kind: IdentityKind
    value: str
    verified: bool


class TimelineEntry(BaseModel):
    id: uuid.UUID
    channel: Channel
    direction: Direction
    body: str
    occurred_at: datetime
    conversation_id: uuid.UUID | None = None


class ClientCard(BaseModel):
    """What an agent sees on a screen pop and what `GET /api/v1/clients/...` answers. Timeline newest first."""

    client: ClientSummary
    identities: list[IdentityView]
    timeline: list[TimelineEntry]
