"""The unified client card: one client, every identity, every contact on any channel; and the bodies of the
card's API (profile, identities, notes, merges)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schema.interactions import Channel, Direction, IdentityKind
from schema.text import DisplayName, Identifier, StorableText


class ClientSummary(BaseModel):
    id: uuid.UUID
    display_name: str | None = None
    created_at: datetime
    merged: list[uuid.UUID] = Field(
        default_factory=list, description="ids of the cards merged into this one: each answers with this card"
    )
    erased: bool = False


class IdentityView(BaseModel):
    kind: IdentityKind
    value: str = Field(description="the kept form: E.164 (`;ext=` for an extension), email address, id")
    raw: str = Field(description="as the channel or the agent gave it")
    verified: bool = Field(description="vouched for by the channel (carrier, DMARC) or a code; else a claim")
    source: Literal["contact", "agent"]
    flags: list[Literal["extension", "short_code", "alphanumeric", "unparsed"]]
    shared: bool = Field(description="shared by many people (a switchboard, `anonymous`): never merges")


class ClaimView(BaseModel):
    """What a customer said it is on a channel (web chat's `identify`): a claim, not an identity — it never
    finds nor merges a card. Only `email_verified` is proof (a code sent to it; the email is then an identity
    too)."""

    channel: Literal["chat"]
    visitor_id: uuid.UUID
    name: str | None
    email: str | None
    phone: str | None
    email_verified: bool


class TimelineEntry(BaseModel):
    id: uuid.UUID
    channel: Channel
    direction: Direction
    body: str
    occurred_at: datetime
    conversation_id: uuid.UUID | None = None


class OpenConversationView(BaseModel):
    id: uuid.UUID
    channel: Channel
    opened_at: datetime
    agent_id: uuid.UUID | None = None
    agent_name: str | None = None


class NoteView(BaseModel):
    id: uuid.UUID
    author: str = Field(description="`admin` or `agent:<id>`")
    body: str
    created_at: datetime


class PossibleMatch(BaseModel):
    client_id: uuid.UUID
    score: float = Field(ge=0, le=1)
    reasons: list[str]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line1: DisplayName | None = Field(default=None, max_length=200)
    line2: DisplayName | None = Field(default=None, max_length=200)
    city: DisplayName | None = Field(default=None, max_length=100)
    postcode: Identifier | None = Field(default=None, min_length=1, max_length=20)
    region: DisplayName | None = Field(default=None, max_length=100)


def _born(day: date) -> date:
    if not date(1870, 1, 1) <= day <= date.today():
        raise ValueError("must be a day between 1870 and today")
    return day


class Profile(BaseModel):
    """What an agent knows of the client, beyond its identities. Every field optional."""

    model_config = ConfigDict(extra="forbid")

    given_name: DisplayName | None = Field(default=None, max_length=100)
    surname: DisplayName | None = Field(default=None, max_length=100)
    date_of_birth: Annotated[date, AfterValidator(_born)] | None = None
    company: DisplayName | None = Field(default=None, max_length=200)
    language: Identifier | None = Field(default=None, min_length=2, max_length=35, description="BCP 47 tag")
    address: Address | None = None


class ClientCard(BaseModel):
    """What an agent sees on a screen pop and what `GET /api/v1/clients/...` answers. Timeline newest first:
    its first page; `timeline_next` is the cursor of the next (`GET /api/v1/clients/{id}/timeline`). The
    database renders every field (`cc_card`); the defaults serve cards built in code."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    client: ClientSummary
    profile: Profile = Field(default_factory=Profile)
    tags: list[str] = Field(default_factory=list)
    identities: list[IdentityView]
    warnings: list[str] = Field(default_factory=list, description='what the agent must know first: "shared number"')
    counts: dict[Channel, int] = Field(default_factory=dict, description="interactions per channel, all of them")
    last_contact_at: datetime | None = None
    open_conversations: list[OpenConversationView] = Field(default_factory=list)
    notes: list[NoteView] = Field(default_factory=list, description="the latest 20, newest first")
    possible_matches: list[PossibleMatch] = Field(default_factory=list)
    claims: list[ClaimView] = Field(
        default_factory=list, description="what the customer said it is on the chat: claims, never identities"
    )
    timeline: list[TimelineEntry]
    timeline_next: str | None = None


class TimelinePage(BaseModel):
    entries: list[TimelineEntry]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


Tag = Annotated[Identifier, Field(min_length=1, max_length=50)]


class ClientPatch(BaseModel):
    """`PATCH /api/v1/clients/{id}`: the profile fields given replace those held (null clears one); `tags`, when
    given, replaces the tags."""

    model_config = ConfigDict(extra="forbid")

    profile: Profile | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)


class IdentityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: Identifier = Field(min_length=1, max_length=320)
    verified: bool = Field(default=False, description="true only when confirmed (a code the client received)")


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: StorableText = Field(min_length=1, max_length=10_000)


class MergeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_id: uuid.UUID = Field(alias="from", description="the card merged into this one")
    reason: StorableText = Field(default="agent's decision", min_length=1, max_length=500)


class MergeDone(BaseModel):
    merge_id: uuid.UUID
    card: ClientCard


class MergeUndone(BaseModel):
    merge_id: uuid.UUID
    survivor: ClientCard
    restored: ClientCard = Field(description="the card merged away, as it is again")


class SharedIdentifier(BaseModel):
    """An identifier quarantined as shared by many people: it reaches the card holding it, never merges."""

    kind: Literal["phone", "email"]
    value: str = Field(description="the kept form, as on the card")
    reason: str = Field(description="`placeholder` (a withheld caller id, a robot's address) or `seen on N cards`")
    cards: int | None = Field(description="the distinct cards it was met on when that quarantined it")
    marked_at: datetime


class SharedIdentifiers(BaseModel):
    shared_identifiers: list[SharedIdentifier] = Field(description="most recently quarantined first")


class SharedIdentifierReleased(BaseModel):
    kind: Literal["phone", "email"]
    value: str
    released_by: str = Field(description="`admin`; detection leaves the identifier alone from then on")
