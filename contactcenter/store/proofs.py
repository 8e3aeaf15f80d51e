"""Identities a customer proved by a code sent to them (a chat visitor's email; an email or phone whose code the
customer read back to an agent): added to the customer's card as verified, like any identity a channel vouches
for. When another card holds the identity verified too, both cards are one person by two proofs: they are merged
by themselves (undoable, audited as automatic with the evidence, `client.merged`), as issue 19 merges on verified
identities only. Held there unverified, shared by many (`shared_identifiers`), or proved on a card that holds no
verified identity of its own, the two are only suggested — and the identifier counts as met on the prover's card
(`cc_sight_identifier`: met on too many cards, it is quarantined)."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from contactcenter.store.card_edits import INSERT_IDENTITY, CardEdits, IdentityHeld, NewIdentity
from contactcenter.store.merges import Evidence, Merge, Merges
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
# Whether the two cards are one person by two proofs: the holder (answering as $3) holds the identity verified and
# it is no one's shared address; the prover's card ($4) holds a verified identity of its own that is not shared
# either (the contact the customer proved it through).
TWO_PROOFS = """
SELECT EXISTS (
           SELECT 1 FROM identities i WHERE i.kind = $1 AND i.value = $2 AND i.verified
              AND NOT EXISTS (SELECT 1 FROM shared_identifiers s WHERE s.kind = i.kind AND s.value = i.value))
       AND EXISTS (
           SELECT 1 FROM identities i WHERE i.client_id = ANY (cc_card_members(cc_card_root($3))) AND i.verified
              AND NOT EXISTS (SELECT 1 FROM shared_identifiers s WHERE s.kind = i.kind AND s.value = i.value))
"""
# Shown on both cards as a possible match, first of their suggestions.
SUGGEST = """
INSERT INTO client_match_suggestions (client_id, other_id, score, reasons)
VALUES ($1, $2, 1.0, ARRAY[$3]), ($2, $1, 1.0, ARRAY[$3])
ON CONFLICT (client_id, other_id) DO UPDATE SET score = 1.0, reasons = EXCLUDED.reasons, computed_at = now()
"""
SIGHTED = "SELECT cc_sight_identifier($1, $2, $3, $4)"


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
            by = f"{owner_kind}:{owner}"
            merge = await self.merge_on_proof(card, held.holder, Evidence(str(kind), value, "chat_code", by))
            if merge is not None:
                return merge.survivor_id
            await self._pool.execute(SUGGEST, card, held.holder, f"proved the {kind} the other card holds unverified")
            await self.sighted(kind, value, card, "proof")
        return card

    async def merge_on_proof(self, card: uuid.UUID, holder: uuid.UUID, evidence: Evidence) -> Merge | None:
        """`card`'s customer proved the identity of `evidence`, which `holder` holds: merge `card` into `holder`
        when that is two proofs of one person (`TWO_PROOFS`); None, and nothing done, when it is not."""
        if not await self._pool.fetchval(TWO_PROOFS, evidence.kind, evidence.value, card):
            return None
        reason = f"proved the {evidence.kind} the other card holds verified"
        merge = await self._merges.merge(holder, card, actor=evidence.by, reason=reason, evidence=evidence)
        log.info("a customer proved an identity another card holds verified: merged (%s)", merge.id)
        return merge

    async def sighted(self, kind: IdentityKind, value: str, card: uuid.UUID, source: str) -> bool:
        """The identifier was met on `card` though another card holds it; True when that quarantined it."""
        quarantined: bool = await self._pool.fetchval(SIGHTED, str(kind), value, card, source)
        if quarantined:
            log.warning("an identifier met on too many cards is quarantined as shared", extra={"kind": str(kind)})
        return quarantined

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
