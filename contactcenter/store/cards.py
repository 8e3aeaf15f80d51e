"""Client cards: the whole card in one query, by client id or by any identity.
(Identities are resolved to clients where interactions are recorded: `cc_record_inbound`, migrations 002, 005.)"""

from __future__ import annotations

import uuid

import asyncpg

from schema import ClientCard, IdentityKind

TIMELINE_LIMIT = 200


# The card is defined once, in the database (`cc_card`, migration 005): the recording of an inbound
# interaction reads it there too, for the offer that follows.
CARD_BY_ID = "SELECT cc_card($1, $2)"
# The card as a column beside an interaction `x`.
CARD_OF_INTERACTION = f"cc_card(x.client_id, {TIMELINE_LIMIT})"
CARD_BY_IDENTITY = "SELECT cc_card((SELECT client_id FROM identities WHERE kind = $1 AND value = $2), $3)"


class Cards:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def by_id(self, client_id: uuid.UUID) -> ClientCard | None:
        text: str | None = await self._pool.fetchval(CARD_BY_ID, client_id, TIMELINE_LIMIT)
        return None if text is None else ClientCard.model_validate_json(text)

    async def by_identity(self, kind: IdentityKind, value: str) -> ClientCard | None:
        text: str | None = await self._pool.fetchval(CARD_BY_IDENTITY, str(kind), value, TIMELINE_LIMIT)
        return None if text is None else ClientCard.model_validate_json(text)
