"""Client cards: the whole card in one query, by client id or by any identity.
(Identities are resolved to clients where interactions are recorded: `cc_record_inbound`, migration 002.)"""

from __future__ import annotations

import uuid

import asyncpg

from schema import ClientCard, IdentityKind

TIMELINE_LIMIT = 200


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
# The card as a column beside an interaction `x`: an offer reads both in one round trip.
CARD_OF_INTERACTION = f"({_CARD_SELECT.replace('$2', str(TIMELINE_LIMIT))} WHERE c.id = x.client_id)"
CARD_BY_IDENTITY = (
    _CARD_SELECT.replace("$2", "$3") + "WHERE c.id = (SELECT client_id FROM identities WHERE kind = $1 AND value = $2)"
)


class Cards:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_id(self, client_id: uuid.UUID) -> ClientCard | None:
        text: str | None = await self._pool.fetchval(CARD_BY_ID, client_id, TIMELINE_LIMIT)
        return None if text is None else ClientCard.model_validate_json(text)

    async def by_identity(self, kind: IdentityKind, value: str) -> ClientCard | None:
        text: str | None = await self._pool.fetchval(CARD_BY_IDENTITY, str(kind), value, TIMELINE_LIMIT)
        return None if text is None else ClientCard.model_validate_json(text)
