"""Client cards: the whole card in one query, by client id or by any identity, as JSON text.

The database renders the card (`cc_card`, migration 005) in the shape of `schema.ClientCard`, and it goes to
the API's clients and to agents' desktops as it is: a card may hold hundreds of timeline entries, and parsing
and writing it again cost more than all the rest of an offer (docs/performance.md, "Figures behind choices in
the code"). The contract tests hold the database's card to the model.
(Identities are resolved to clients where interactions are recorded: `cc_record_inbound`, migrations 002, 005.)"""

from __future__ import annotations

import uuid

import asyncpg

from schema import IdentityKind

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

    async def by_id(self, client_id: uuid.UUID) -> str | None:
        """The card's JSON, or None when there is no such client."""
        text: str | None = await self._pool.fetchval(CARD_BY_ID, client_id, TIMELINE_LIMIT)
        return text

    async def by_identity(self, kind: IdentityKind, value: str) -> str | None:
        """The card's JSON of whoever holds the identity, or None."""
        text: str | None = await self._pool.fetchval(CARD_BY_IDENTITY, str(kind), value, TIMELINE_LIMIT)
        return text
