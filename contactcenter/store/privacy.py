"""A client's personal data: exported as one JSON document, or erased (migrations 017 and 026: `cc_export_client`,
`cc_erase_client`) — from every table (chat transcripts and claims, stored mail and attachments included) and
from the event payloads kept, the counts kept, audited in `client_erasures` and told as `client.erased`. The
erasure closes the card's open conversations (migration 038) and answers them, for the caller to take their work
out of live state (`contactcenter.agents.releases`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from contactcenter.errors import NotFound
from contactcenter.store.releases import LiveRelease, releases_of_card

EXPORT = "SELECT cc_export_client($1)"
ERASE = "SELECT cc_erase_client($1, $2)"
# `identifier.released` (written since migration 038's erasure) names an identifier by its digest, as
# `identifier.quarantined` does: emptied the same way, with its stored webhook copies, for the identifiers the card
# held or was seen with. Run in the erasure's transaction, before it (the identities and sightings are gone after).
FORGET_RELEASES = """
WITH members AS (
    SELECT unnest(cc_card_members(cc_card_root($1))) AS client_id
), digests AS (
    SELECT encode(cc_identity_digest(kind, value), 'hex') AS digest FROM (
        SELECT kind, value FROM identities WHERE client_id IN (SELECT client_id FROM members)
        UNION SELECT kind, value FROM identifier_sightings WHERE client_id IN (SELECT client_id FROM members)) i
), erased AS (
    UPDATE events SET data = data || '{"digest": ""}'::jsonb, subject = '', partition_key = 'identifier:'
     WHERE type = 'identifier.released' AND data ->> 'digest' IN (SELECT digest FROM digests)
    RETURNING id, subject, partition_key, data
)
UPDATE webhook_deliveries d
   SET body = convert_to(jsonb_set(jsonb_set(jsonb_set(
                  convert_from(d.body, 'UTF8')::jsonb, '{data}', e.data), '{subject}', to_jsonb(e.subject)),
                  '{partitionkey}', to_jsonb(e.partition_key))::text, 'UTF8')
  FROM erased e WHERE e.id IS NOT NULL AND d.event_id = e.id::text
"""


# Tombstones past their retention (`CC_IDENTITY_TOMBSTONE_RETENTION_HOURS`), a bounded batch at a time, rows
# another process is deleting skipped (index: migration 031).
FORGET_TOMBSTONES = """
DELETE FROM identity_tombstones WHERE digest IN (
    SELECT digest FROM identity_tombstones WHERE erased_at < now() - make_interval(secs => $1)
    ORDER BY erased_at LIMIT $2 FOR UPDATE SKIP LOCKED)
"""


async def forget_tombstones(pool: asyncpg.Pool, seconds: float, batch: int) -> int:
    """Delete up to `batch` identity tombstones older than `seconds`; how many. A tombstone only has to outlive
    the contacts received before the erasure and still on the bus: past that, a contact is a stranger's."""
    status: str = await pool.execute(FORGET_TOMBSTONES, seconds, batch)
    return int(status.split()[-1])


@dataclass(frozen=True)
class Erased:
    client_id: uuid.UUID  # the card erased (the one the id given answers as)
    released: list[LiveRelease]  # its conversations the erasure closed, whose work live state may hold


class Privacy:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def export(self, client_id: uuid.UUID) -> str:
        text: str | None = await self._pool.fetchval(EXPORT, client_id)
        if text is None:
            raise NotFound("no such client", field="client_id")
        return text

    async def erase(self, client_id: uuid.UUID, *, actor: str) -> Erased:
        """Erase the card `client_id` answers as, with every card merged into it."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(FORGET_RELEASES, client_id)
            root: uuid.UUID | None = await conn.fetchval(ERASE, client_id, actor)
            if root is None:
                raise NotFound("no such client", field="client_id")
            released = await releases_of_card(conn, root)
        return Erased(root, released)
