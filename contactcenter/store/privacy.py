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
            root: uuid.UUID | None = await conn.fetchval(ERASE, client_id, actor)
            if root is None:
                raise NotFound("no such client", field="client_id")
            released = await releases_of_card(conn, root)
        return Erased(root, released)
