"""Merging two cards, and undoing it exactly.

A merge points the merged-away card at the survivor (`clients.merged_into`): from then on the survivor's card
shows both — identities, interactions, conversations, notes — and the merged-away id answers with it. Nothing
is copied or rewritten, so undoing is clearing the pointer: each card gets back what it held, and whatever
arrived since lands where its identity belongs (a contact from the merged-away card's number was recorded on
that card all along). Both are audited (`client_merges`) and written with their events in one transaction. A
merge made by itself on verified evidence (`contactcenter/store/proofs.py`) is marked `automatic` and keeps its
evidence beside who and why; it is undone the same way."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

import asyncpg

from contactcenter.errors import Conflict, NotFound

# Both cards locked, in id order, so two merges of the same cards never deadlock and never both succeed.
LOCK_CARDS = "SELECT id FROM clients WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
ROOT = "SELECT cc_card_root($1)"
MERGE = """
WITH pointed AS (
    UPDATE clients SET merged_into = $2 WHERE id = $3 AND merged_into IS NULL RETURNING id
), audited AS (
    INSERT INTO client_merges (id, survivor_id, merged_id, actor, reason, automatic, evidence)
    SELECT $1, $2, id, $4, $5, $6::jsonb IS NOT NULL, $6::jsonb FROM pointed
), forgotten AS (
    DELETE FROM client_match_suggestions
    WHERE (client_id, other_id) IN (($2, $3), ($3, $2))
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'client.merged', $2, 'client:' || $2,
       jsonb_build_object('merge_id', $1, 'survivor_id', $2, 'merged_id', id, 'actor', $4::text, 'reason', $5::text,
                          'automatic', $6::jsonb IS NOT NULL)
       || CASE WHEN $6::jsonb IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('evidence', $6::jsonb) END
FROM pointed
"""
MERGE_BY_ID = "SELECT survivor_id, merged_id, undone_at FROM client_merges WHERE id = $1 FOR UPDATE"
UNDO = """
WITH freed AS (
    UPDATE clients SET merged_into = NULL WHERE id = $3 AND merged_into = $2 RETURNING id
), audited AS (
    UPDATE client_merges SET undone_at = now(), undone_by = $4 WHERE id = $1
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'client.unmerged', $2, 'client:' || $2,
       jsonb_build_object('merge_id', $1, 'survivor_id', $2, 'merged_id', $3, 'actor', $4::text)
FROM freed
"""


@dataclass(frozen=True)
class Evidence:
    """What made a merge by itself: the identity (`kind`, `value`) the merged card proved and the survivor holds
    verified, how it was proved (`proof`: `chat_code`, a code a chat visitor received; `agent_code`, a code the
    customer read back to an agent), and by whom (`by`: the visitor or the agent)."""

    kind: str
    value: str
    proof: str
    by: str


@dataclass(frozen=True)
class Merge:
    id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID


class Merges:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def merge(
        self, survivor: uuid.UUID, merged: uuid.UUID, *, actor: str, reason: str, evidence: Evidence | None = None
    ) -> Merge:
        """Merge the card `merged` answers as into the one `survivor` answers as; with `evidence`, a merge made
        by itself (audited as automatic, the evidence kept)."""
        proof = asdict(evidence) if evidence is not None else None  # the pool's jsonb codec writes it
        async with self._pool.acquire() as conn, conn.transaction():
            for _ in range(8):  # a concurrent merge may move a root between reading it and locking it
                survivor_root = await conn.fetchval(ROOT, survivor)
                merged_root = await conn.fetchval(ROOT, merged)
                if survivor_root is None:
                    raise NotFound("no such client", field="client_id")
                if merged_root is None:
                    raise NotFound("no such client", field="from")
                if survivor_root == merged_root:
                    raise Conflict("these are one card already", field="from")
                await conn.execute(LOCK_CARDS, [survivor_root, merged_root])
                if (await conn.fetchval(ROOT, survivor), await conn.fetchval(ROOT, merged)) == (
                    survivor_root,
                    merged_root,
                ):
                    break
            else:
                raise Conflict("the cards are being merged by someone else; try again", field="from")
            merge_id = uuid.uuid4()
            await conn.execute(MERGE, merge_id, survivor_root, merged_root, actor, reason, proof)
        return Merge(merge_id, survivor_root, merged_root)

    async def undo(self, merge_id: uuid.UUID, *, actor: str) -> Merge:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(MERGE_BY_ID, merge_id)
            if row is None:
                raise NotFound("no such merge", field="merge_id")
            if row["undone_at"] is not None:
                raise Conflict("this merge was undone already", field="merge_id")
            await conn.execute(LOCK_CARDS, [row["survivor_id"], row["merged_id"]])
            await conn.execute(UNDO, merge_id, row["survivor_id"], row["merged_id"], actor)
        return Merge(merge_id, row["survivor_id"], row["merged_id"])
