"""Client cards: resolving an identity to one client, and reading the whole card in one query."""

from __future__ import annotations

import uuid

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contactcenter.identities import Identity
from schema import ClientCard, IdentityKind

TIMELINE_LIMIT = 200

Connection = asyncpg.Connection | PoolConnectionProxy


# Serialises the resolution of one identifier across routers: two first contacts from one new number at
# once end with one client. Released at the end of the transaction.
LOCK_IDENTITY = "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))"
CLIENT_BY_IDENTITY = "SELECT client_id FROM identities WHERE kind = $1 AND value = $2"
INSERT_CLIENT = "INSERT INTO clients (id) VALUES ($1)"
INSERT_IDENTITY = "INSERT INTO identities (kind, value, client_id, verified) VALUES ($1, $2, $3, $4)"
VERIFY_IDENTITY = "UPDATE identities SET verified = true WHERE kind = $1 AND value = $2 AND NOT verified"

_CARD_SELECT = """
SELECT json_build_object(
    'client', json_build_object('id', c.id, 'display_name', c.display_name, 'created_at', c.created_at),
    'identities', (
        SELECT coalesce(json_agg(json_build_object('kind', i.kind, 'value', i.value, 'verified', i.verified)
                                 ORDER BY i.created_at, i.kind, i.value), '[]'::json)
        FROM identities i WHERE i.client_id = c.id),
    'timeline', (
        SELECT coalesce(json_agg(t ORDER BY t.occurred_at DESC, t.id), '[]'::json)
        FROM (SELECT x.id, x.channel, x.direction, x.body, x.received_at AS occurred_at, x.conversation_id
              FROM interactions x WHERE x.client_id = c.id
              ORDER BY x.received_at DESC LIMIT $2) t)
)::text
FROM clients c
"""
CARD_BY_ID = _CARD_SELECT + "WHERE c.id = $1"
CARD_BY_IDENTITY = (
    _CARD_SELECT.replace("$2", "$3") + "WHERE c.id = (SELECT client_id FROM identities WHERE kind = $1 AND value = $2)"
)


async def resolve_identity(conn: Connection, identity: Identity) -> uuid.UUID:
    """The client behind `identity`, created on first contact. Call inside a transaction."""
    await conn.execute(LOCK_IDENTITY, str(identity.kind), identity.value)
    client_id: uuid.UUID | None = await conn.fetchval(CLIENT_BY_IDENTITY, str(identity.kind), identity.value)
    if client_id is not None:
        if identity.verified:
            await conn.execute(VERIFY_IDENTITY, str(identity.kind), identity.value)
        return client_id
    client_id = uuid.uuid4()
    await conn.execute(INSERT_CLIENT, client_id)
    await conn.execute(INSERT_IDENTITY, str(identity.kind), identity.value, client_id, identity.verified)
    return client_id


class Cards:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_id(self, client_id: uuid.UUID) -> ClientCard | None:
        text: str | None = await self._pool.fetchval(CARD_BY_ID, client_id, TIMELINE_LIMIT)
        return None if text is None else ClientCard.model_validate_json(text)

    async def by_identity(self, kind: IdentityKind, value: str) -> ClientCard | None:
        text: str | None = await self._pool.fetchval(CARD_BY_IDENTITY, str(kind), value, TIMELINE_LIMIT)
        return None if text is None else ClientCard.model_validate_json(text)
