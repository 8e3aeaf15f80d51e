"""Identifiers shared by many people (a switchboard, `anonymous`, a family's landline), quarantined: listed for
an admin, who may take one out of quarantine. Quarantine itself happens in the database as identifiers are met
(migration 026: `cc_placeholder_identifier`, `cc_sight_identifier`)."""

from __future__ import annotations

import asyncpg

from contactcenter.errors import NotFound
from schema.cards import SharedIdentifier, SharedIdentifierReleased

LIST = """
SELECT kind, value, reason, cards, marked_at FROM shared_identifiers
WHERE kind IN ('phone', 'email') ORDER BY marked_at DESC, kind, value LIMIT $1
"""
# Out of quarantine, and remembered as released so that detection does not put it back; told as
# `identifier.released` in the same statement, naming the identifier as `identifier.quarantined` did (its digest,
# never its value), so the two follow each other in its order (`identifier:<digest>`).
RELEASE = """
WITH gone AS (
    DELETE FROM shared_identifiers WHERE kind = $1 AND value = $2
    RETURNING kind, value, encode(cc_identity_digest(kind, value), 'hex') AS digest
), kept AS (
    INSERT INTO shared_identifier_releases (kind, value, released_by)
    SELECT kind, value, $3 FROM gone
    ON CONFLICT (kind, value) DO UPDATE SET released_by = EXCLUDED.released_by, released_at = now()
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'identifier.released', digest, 'identifier:' || digest,
       jsonb_build_object('kind', kind, 'digest', digest, 'released_by', $3::text)
FROM gone
RETURNING 1
"""


class SharedIdentifierList:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def quarantined(self, limit: int) -> list[SharedIdentifier]:
        rows = await self._pool.fetch(LIST, limit)
        return [SharedIdentifier.model_validate(dict(row)) for row in rows]

    async def release(self, kind: str, value: str, *, actor: str) -> SharedIdentifierReleased:
        if await self._pool.fetchval(RELEASE, kind, value, actor) is None:
            raise NotFound("this identifier is not quarantined", field="value")
        return SharedIdentifierReleased.model_validate({"kind": kind, "value": value, "released_by": actor})
