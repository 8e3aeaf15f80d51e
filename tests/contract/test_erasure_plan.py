"""An erasure finds the events holding the card's personal data by index (migration 041), not by reading the
whole log: the log keeps `CC_EVENT_RETENTION_DAYS` of every contact, and read whole it cost about a second per two
million events. Proved by the counters of the erasure's own transaction: it reads `events` by index and
never scans it (plans inside `cc_erase_client` cannot be shown by EXPLAIN)."""

from __future__ import annotations

import json

import asyncpg
import pytest

from contactcenter.store.privacy import ERASE
from contactcenter.store.proofs import ProvedIdentities
from contactcenter.store.shared_identifiers import SharedIdentifierList
from schema import IdentityKind

# Other cards' events, as a busy log holds them: identities added and contacts, none of this card.
OTHERS = """
INSERT INTO events (type, subject, partition_key, data)
SELECT (ARRAY['interaction.received', 'identity.added', 'conversation.opened', 'client.merged'])[1 + n % 4],
       'c' || n, 'client:c' || n,
       jsonb_build_object('client_id', gen_random_uuid(), 'survivor_id', gen_random_uuid(),
                          'merged_id', gen_random_uuid(), 'digest', md5(n::text))
FROM generate_series(1, $1) AS n
"""
RECORD = "SELECT (cc_record_inbound(gen_random_uuid(), 'sms', 'inbound', $1, 'phone', $2, true, $2, '+15005550006',"
RECORD += " 'hi', now())).o_client_id"
# What this backend has done to the log and not yet reported (its transaction's, and before it what it has not
# flushed yet): read before and after, no statistics to wait for.
SCANS = "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'events'::regclass"


# Statistics taken after the log was written, or never (a log grown since: autovacuum has not come by yet).
@pytest.mark.parametrize("analyzed", [True, False], ids=["analyzed", "never-analyzed"])
async def test_an_erasure_reads_the_event_log_by_index_only(migrated_pool: asyncpg.Pool, analyzed: bool) -> None:
    pool = migrated_pool
    landline = "+14155550380"
    card = await pool.fetchval(RECORD, "SM-card", landline)
    for n in range(1, 5):  # the landline seen on more cards than the policy allows: quarantined, then released
        other = await pool.fetchval(RECORD, f"SM-other-{n}", f"+1415555039{n}")
        await ProvedIdentities(pool).sighted(IdentityKind.PHONE, landline, other, "agent_claim")
    await SharedIdentifierList(pool).release("phone", landline, actor="admin")
    await pool.execute(OTHERS, 30_000)
    if analyzed:
        await pool.execute("ANALYZE events")

    # The erasure's statement (Privacy.erase's) in a transaction whose own counts tell how it read the log.
    async with pool.acquire() as conn, conn.transaction():
        before = await conn.fetchrow(SCANS)
        assert await conn.fetchval(ERASE, card, "admin") == card
        after = await conn.fetchrow(SCANS)
    assert before is not None and after is not None
    assert after[0] == before[0], "the erasure read the whole event log"
    assert after[1] > before[1]
    told = await pool.fetch("SELECT data::text FROM events WHERE type IN ('identity.added', 'identifier.released')")
    assert not [row for row in told if "4155550380" in row[0]]
    released = await pool.fetchval("SELECT data ->> 'digest' FROM events WHERE type = 'identifier.released'")
    assert released == ""
    assert json.loads(await pool.fetchval("SELECT data::text FROM events WHERE type = 'client.erased'"))
