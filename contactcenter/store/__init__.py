"""PostgreSQL, the source of truth: the connection pool, migrations, and one repository per subject.

`ConversationsPort` is what routing needs of the conversation store (`conversations.Conversations` is its
adapter), with the values it answers: routing imports this module, never the adapter. `CallOccupationsPort`
(`calls.CallOccupations`) likewise: the calls that occupy agents, for live state's rebuild."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from contactcenter.errors import Invalid
from contactcenter.identities import Identity
from schema import Interaction

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """We keep no session state (no LISTEN, no session locks, no SET): the reset asyncpg runs on every release
    would be one more round trip per query for nothing."""


async def open_pool(
    url: str, *, schema: str = "public", min_size: int = 2, max_size: int = 20, events: bool = True
) -> asyncpg.Pool:
    """A pool whose connections see `schema` first. Tests give each test its own schema. With `events` off, the
    changes made through it write no events (migration 020)."""
    if not _SCHEMA_NAME.match(schema):
        raise Invalid(f"database schema name {schema!r} is not a plain identifier", field="database_schema")
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        # The schema in the name tells an operator (and a test) whose connections these are. Cards are rendered
        # by the database (`cc_card`): in UTC, whatever the server's own time zone.
        server_settings={
            "search_path": schema,
            "application_name": f"contactcenter:{schema}",
            "TimeZone": "UTC",
            "cc.events": "on" if events else "off",
        },
        init=_init_connection,
        reset=_keep_session,
    )
    return pool


@dataclass(frozen=True)
class RecordedInteraction:
    """Where an inbound interaction landed. `new` is False for a redelivery or a provider's retry."""

    interaction_id: uuid.UUID
    client_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    conversation_open: bool
    new: bool
    # What an offer of this interaction shows, read in the same transaction when it opened a conversation or
    # joined one still waiting in a queue (None otherwise): the queue's name and the card as JSON text.
    queue_name: str | None = None
    card_json: str | None = None

    def offer_context(self, interaction: Interaction) -> InteractionInContext | None:
        """What an offer of `interaction` (the one recorded) shows, without reading it again."""
        if self.queue_name is None or self.card_json is None:
            return None
        return InteractionInContext(interaction, self.queue_name, self.card_json)


@dataclass(frozen=True)
class InteractionInContext:
    interaction: Interaction
    queue_name: str
    card_json: str  # the client's card as the database rendered it (`store.cards`)


@dataclass(frozen=True)
class OpenConversation:
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    agent_id: uuid.UUID | None
    interaction_id: uuid.UUID
    opened_ms: int


@dataclass(frozen=True)
class OccupyingCall:
    """A call in progress that keeps its agent off every channel until it ends, or until `until_ms` at the
    latest (`calls.CallOccupations`)."""

    call_sid: str
    agent_id: uuid.UUID
    until_ms: int


class CallOccupationsPort(Protocol):
    """The durable record of calls occupying their agents, as live-state recovery reads it."""

    async def in_progress(self) -> list[OccupyingCall]:
        """Every call that occupies its agent now, soonest bound first."""
        ...

    async def still_on(self, call_sids: list[str]) -> set[str]:
        """Those of `call_sids` that have not ended."""
        ...


class ConversationsPort(Protocol):
    """The conversation store as routing (the router, placement, live-state recovery) uses it."""

    async def record_inbound(
        self, interaction: Interaction, sender: Identity, *, with_card: bool = True
    ) -> RecordedInteraction:
        """Store the interaction once, resolve its sender to a card and attach it to a conversation, in one
        transaction; `with_card` reads what its offer shows in the same transaction."""
        ...

    async def open_in_queues(self) -> list[OpenConversation]:
        """Every open conversation that has a queue, oldest first: what live state holds."""
        ...

    async def interaction(self, interaction_id: uuid.UUID) -> InteractionInContext:
        """An interaction with its queue's name and the client's whole card: what an offer shows."""
        ...
