"""A client's personal data: exported as one JSON document, or erased (migration 017: `cc_export_client`,
`cc_erase_client`) — from every table and from the event payloads kept, the counts kept, audited in
`client_erasures` and told as `client.erased`."""

from __future__ import annotations

import uuid

import asyncpg

from contactcenter.errors import NotFound

EXPORT = "SELECT cc_export_client($1)"
ERASE = "SELECT cc_erase_client($1, $2)"


class Privacy:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def export(self, client_id: uuid.UUID) -> str:
        text: str | None = await self._pool.fetchval(EXPORT, client_id)
        if text is None:
            raise NotFound("no such client", field="client_id")
        return text

    async def erase(self, client_id: uuid.UUID, *, actor: str) -> uuid.UUID:
        """Erase the card `client_id` answers as, with every card merged into it; that card's id."""
        async with self._pool.acquire() as conn, conn.transaction():
            root: uuid.UUID | None = await conn.fetchval(ERASE, client_id, actor)
        if root is None:
            raise NotFound("no such client", field="client_id")
        return root
