"""What agents change on a card: profile and tags, notes, identities. Each change is written with its event
(the outbox, migration 010) in one transaction. A merged-away id edits the card it answers as (the survivor)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contactcenter.errors import Conflict, NotFound
from contactcenter.store.suggestions import Suggestions
from schema import IdentityKind
from schema.cards import ClientPatch

ROOT = "SELECT cc_card_root($1)"
# The profile fields given replace those held; a null clears one (`jsonb_strip_nulls`). The display name
# follows the names when there are any.
PATCH_CLIENT = """
WITH changed AS (
    UPDATE clients c SET
        profile = n.profile,
        tags = coalesce($3::text[], c.tags),
        display_name = coalesce(
            nullif(concat_ws(' ', n.profile ->> 'given_name', n.profile ->> 'surname'), ''), c.display_name)
    FROM (SELECT id, CASE WHEN $2::jsonb IS NULL THEN profile
                          ELSE jsonb_strip_nulls(profile || $2::jsonb) END AS profile
          FROM clients WHERE id = $1) n
    WHERE c.id = n.id
    RETURNING c.id
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'client.updated', ch.id, 'client:' || ch.id,
       jsonb_build_object('client_id', ch.id, 'fields', to_jsonb($4::text[]))
FROM changed ch
"""
INSERT_NOTE = """
WITH note AS (
    INSERT INTO client_notes (id, client_id, author, body) VALUES ($1, $2, $3, $4) RETURNING id, client_id, author
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'client.note_added', n.client_id, 'client:' || n.client_id,
       jsonb_build_object('client_id', n.client_id, 'note_id', n.id, 'author', n.author)
FROM note n
"""
IDENTITY_HOLDER = "SELECT cc_card_root(client_id) FROM identities WHERE kind = $1 AND value = $2"
INSERT_IDENTITY = """
WITH added AS (
    INSERT INTO identities (kind, value, client_id, verified, raw_value, source)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (kind, value) DO NOTHING
    RETURNING kind, value, client_id, verified
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'identity.added', a.client_id, 'client:' || a.client_id,
       jsonb_build_object('client_id', a.client_id, 'kind', a.kind, 'value', a.value, 'verified', a.verified)
FROM added a
"""
# A confirmation (a code the client received) of an identity the card holds already makes it verified.
VERIFY_IDENTITY = "UPDATE identities SET verified = true WHERE kind = $1 AND value = $2 AND $3 AND NOT verified"


class IdentityHeld(Conflict):
    """The identity is on another card: the answer names it, for the agent to merge the two."""

    def __init__(self, holder: uuid.UUID) -> None:
        super().__init__(f"another card holds this identity: client {holder}", field="value")
        self.holder = holder


@dataclass(frozen=True)
class NewIdentity:
    kind: IdentityKind
    value: str  # the kept form
    raw: str  # as the agent (or the customer) typed it
    verified: bool
    source: Literal["contact", "agent"] = "agent"  # an agent typed it; `contact`: the customer proved it


class CardEdits:
    """Edits; after each that changes what matching compares, the card's duplicate suggestions are computed
    again (online, not in a batch)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._suggestions = Suggestions(pool)

    async def patch(self, client_id: uuid.UUID, patch: ClientPatch) -> uuid.UUID:
        """Apply the patch to the card `client_id` answers as; that card's id."""
        profile = patch.profile.model_dump(mode="json", exclude_unset=True) if patch.profile is not None else None
        fields = [f"profile.{name}" for name in (profile or {})] + (["tags"] if patch.tags is not None else [])
        tags = list(dict.fromkeys(patch.tags)) if patch.tags is not None else None
        async with self._pool.acquire() as conn, conn.transaction():
            root = await self._root(conn, client_id)
            await conn.execute(PATCH_CLIENT, root, profile, tags, fields)
        if profile:
            await self._suggestions.refresh(root)
        return root

    async def add_note(self, client_id: uuid.UUID, body: str, author: str) -> uuid.UUID:
        async with self._pool.acquire() as conn, conn.transaction():
            root = await self._root(conn, client_id)
            await conn.execute(INSERT_NOTE, uuid.uuid4(), root, author, body)
        return root

    async def add_identity(self, client_id: uuid.UUID, identity: NewIdentity) -> uuid.UUID:
        """Add the identity to the card; `IdentityHeld` when another card holds it."""
        kind = str(identity.kind)
        async with self._pool.acquire() as conn, conn.transaction():
            root = await self._root(conn, client_id)
            # Serialised with the router's first contacts of the same identifier (cc_record_inbound's lock).
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))", kind, identity.value
            )
            holder = await conn.fetchval(IDENTITY_HOLDER, kind, identity.value)
            if holder is not None and holder != root:
                raise IdentityHeld(holder)
            if holder is None:
                await conn.execute(
                    INSERT_IDENTITY, kind, identity.value, root, identity.verified, identity.raw, identity.source
                )
            else:
                await conn.execute(VERIFY_IDENTITY, kind, identity.value, identity.verified)
        if identity.kind is IdentityKind.PHONE:
            await self._suggestions.refresh(root)
        return root

    @staticmethod
    async def _root(conn: PoolConnectionProxy, client_id: uuid.UUID) -> uuid.UUID:
        root: uuid.UUID | None = await conn.fetchval(ROOT, client_id)
        if root is None:
            raise NotFound("no such client", field="client_id")
        return root
