"""Duplicate suggestions, kept as cards change: a card's blocks are written again, the cards sharing one are
scored against it (`contactcenter.matching`), and its suggestions (both ways) replaced — the card's
`possible_matches`. Bounded: at most `PER_BLOCK` cards of a block are compared (a common surname's block says
little anyway)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg

from contactcenter.matching import SUGGEST_FROM, Person, blocking_keys, likeness

PER_BLOCK = 100
SHOWN = 5

# Each card's profile and its phones that prove something (kept as E.164, not shared), merged cards included.
PEOPLE = """
SELECT c.id, c.profile,
       coalesce((SELECT array_agg(i.value) FROM identities i
                 WHERE i.client_id = ANY (cc_card_members(c.id)) AND i.kind = 'phone' AND i.value LIKE '+%'
                   AND NOT EXISTS (SELECT 1 FROM shared_identifiers s WHERE s.kind = i.kind AND s.value = i.value)),
                '{}') AS phones
FROM clients c WHERE c.id = ANY ($1::uuid[]) AND c.merged_into IS NULL
"""
REPLACE_KEYS = """
WITH gone AS (DELETE FROM client_match_keys WHERE client_id = $1)
INSERT INTO client_match_keys (key, client_id) SELECT DISTINCT k, $1 FROM unnest($2::text[]) AS k
ON CONFLICT DO NOTHING
"""
CANDIDATES = f"""
SELECT DISTINCT b.client_id FROM unnest($2::text[]) AS k(key)
CROSS JOIN LATERAL (SELECT client_id FROM client_match_keys
                    WHERE key = k.key AND client_id <> $1 LIMIT {PER_BLOCK}) b
"""
REPLACE_SUGGESTIONS = """
WITH gone AS (DELETE FROM client_match_suggestions WHERE client_id = $1 OR other_id = $1)
INSERT INTO client_match_suggestions (client_id, other_id, score, reasons)
SELECT $1, o, s, string_to_array(r, '|') FROM unnest($2::uuid[], $3::float8[], $4::text[]) AS x(o, s, r)
UNION ALL
SELECT o, $1, s, string_to_array(r, '|') FROM unnest($2::uuid[], $3::float8[], $4::text[]) AS x(o, s, r)
ON CONFLICT (client_id, other_id) DO UPDATE SET score = EXCLUDED.score, reasons = EXCLUDED.reasons,
                                                computed_at = now()
"""


def person(profile: Mapping[str, object], phones: list[str]) -> Person:
    def text(value: object) -> str | None:
        return str(value).strip().lower() or None if value else None

    address = profile.get("address")
    address = address if isinstance(address, Mapping) else {}
    return Person(
        given_name=text(profile.get("given_name")),
        surname=text(profile.get("surname")),
        date_of_birth=text(profile.get("date_of_birth")),
        street=text(address.get("line1")),
        city=text(address.get("city")),
        postcode=text(address.get("postcode")),
        phones=frozenset(phones),
    )


class Suggestions:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def refresh(self, client_id: uuid.UUID) -> int:
        """Score the card against the cards in its blocks and keep its best suggestions; how many it has."""
        async with self._pool.acquire() as conn, conn.transaction():
            people = await conn.fetch(PEOPLE, [client_id])
            if not people:
                return 0
            me = person(people[0]["profile"], list(people[0]["phones"]))
            keys = blocking_keys(me)
            await conn.execute(REPLACE_KEYS, client_id, keys)
            others = [row["client_id"] for row in await conn.fetch(CANDIDATES, client_id, keys)]
            scored = []
            for row in await conn.fetch(PEOPLE, others) if others else []:
                alike = likeness(me, person(row["profile"], list(row["phones"])))
                if alike.score >= SUGGEST_FROM:
                    scored.append((alike.score, row["id"], "|".join(alike.reasons)))
            best = sorted(scored, key=lambda s: (-s[0], str(s[1])))[:SHOWN]
            await conn.execute(
                REPLACE_SUGGESTIONS, client_id, [b[1] for b in best], [b[0] for b in best], [b[2] for b in best]
            )
        return len(best)
