"""Identities a customer proved (a chat visitor's email, by a code sent to it): added to the customer's card as
verified, like any identity a channel vouches for. When another card holds the identity verified too, both
cards are one person by two proofs: they are merged (undoable, audited, `client.merged`), as issue 19 merges
on verified identities only; held there unverified (an agent typed it) or shared by many (`shared_identifiers`),
the two are only suggested."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from contactcenter.store.card_edits import INSERT_IDENTITY, CardEdits, IdentityHeld, NewIdentity
from contactcenter.store.merges import Merges
from schema import IdentityKind

log = logging.getLogger(__name__)

# The card of the customer's own identity (its chat visitor id), made as a first contact would make it.
LOCK_IDENTITY = "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))"
CARD_OF = "SELECT cc_card_root(client_id) FROM identities WHERE kind = $1 AND value = $2"
NEW_CARD = """
WITH made AS (INSERT INTO clients (id) VALUES ($1) RETURNING id)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'client.created', id, 'client:' || id, jsonb_build_object('client_id', id) FROM made
"""
# Whether the identity proves the card that holds it is the customer: verified there, and no one's shared address.
PROOF_THERE = """
SELECT i.verified AND NOT EXISTS (SELECT 1 FROM shared_identifiers s WHERE s.kind = i.kind AND s.value = i.value)
FROM identities i WHERE i.kind = $1 AND i.value = $2
"""
# Shown on both cards as a possible match, first of their suggestions.
SUGGEST = """
INSERT INTO client_match_suggestions (client_id, other_id, score, reasons)
VALUES ($1, $2, 1.0, ARRAY[$3]), ($2, $1, 1.0, ARRAY[$3])
ON CONFLICT (client_id, other_id) DO UPDATE SET score = 1.0, reasons = EXCLUDED.reasons, computed_at = now()
"""


class ProvedIdentities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._edits = CardEdits(pool)
        self._merges = Merges(pool)

    async def proved(self, owner_kind: IdentityKind, owner: str, kind: IdentityKind, value: str) -> uuid.UUID:
        """`owner` (the customer's identity on its channel) proved `value`: it joins the owner's card, verified.
        Answers the card the owner answers as afterwards (the other card, when they were merged)."""
        card = await self._card_of(owner_kind, owner)
        try:
            await self._edits.add_identity(card, NewIdentity(kind, value, value, verified=True, source="contact"))
        except IdentityHeld as held:
            if await self._pool.fetchval(PROOF_THERE, str(kind), value):
                reason = f"proved the {kind} the other card holds verified"
                merge = await self._merges.merge(held.holder, card, actor=f"{owner_kind}:{owner}", reason=reason)
                log.info("a customer proved an identity another card holds verified: merged (%s)", merge.id)
                return merge.survivor_id
            await self._pool.execute(SUGGEST, card, held.holder, f"proved the {kind} the other card holds unverified")
        return card

    async def _card_of(self, kind: IdentityKind, value: str) -> uuid.UUID:
        async with self._pool.acquire() as conn, conn.transaction():
            # The same lock a first contact of this identity takes (cc_record_inbound): one card, never two.
            await conn.execute(LOCK_IDENTITY, str(kind), value)
            card: uuid.UUID | None = await conn.fetchval(CARD_OF, str(kind), value)
            if card is not None:
                return card
            card = uuid.uuid4()
            await conn.execute(NEW_CARD, card)
            await conn.execute(INSERT_IDENTITY, str(kind), value, card, True, value, "contact")
        return card
