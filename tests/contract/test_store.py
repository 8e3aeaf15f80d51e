"""PostgreSQL: migrations apply once even when several processes start together, and the hot query of
recording an interaction is idempotent and safe under concurrent routers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from contactcenter.identities import Identity
from contactcenter.store import open_pool
from contactcenter.store.conversations import Conversations
from contactcenter.store.migrate import migrate
from schema import Channel, IdentityKind, Interaction


async def test_processes_starting_together_apply_each_migration_once(database_url: str, database_schema: str) -> None:
    pools = [await open_pool(database_url, schema=database_schema, min_size=1, max_size=2) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(pool) for pool in pools))
        assert sorted(len(names) for names in applied)[:2] == [0, 0], "only one process applies them"
        versions = await pools[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [row["version"] for row in versions] == [1, 2, 3]
        assert await migrate(pools[0]) == []
    finally:
        for pool in pools:
            await pool.close()


def _sms(sender: str, sid: str) -> Interaction:
    return Interaction(
        channel=Channel.SMS, provider_id=sid, from_address=sender, from_verified=True, received_at=datetime.now(UTC)
    )


@pytest.fixture
async def pool(database_url: str, database_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own, migrated schema."""
    opened = await open_pool(database_url, schema=database_schema)
    await migrate(opened)
    yield opened
    await opened.close()


async def test_concurrent_first_contacts_from_one_number_make_one_client_and_one_conversation(
    pool: asyncpg.Pool,
) -> None:
    conversations = Conversations(pool)
    sender = Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    sids = [f"SM{n:032d}" for n in range(20)]
    recorded = await asyncio.gather(
        *(conversations.record_inbound(_sms("+14155550134", sid), sender) for sid in sids + sids)
    )
    assert len({r.client_id for r in recorded}) == 1
    assert len({r.conversation_id for r in recorded}) == 1
    assert sum(r.new for r in recorded) == len(sids), "each message is new exactly once"
    assert await pool.fetchval("SELECT count(*) FROM interactions") == len(sids)


async def test_an_identity_first_seen_unverified_becomes_verified_when_a_channel_vouches(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    claim = Identity(IdentityKind.PHONE, "+14155550134", verified=False)
    first = await conversations.record_inbound(_sms("+14155550134", "SM1"), claim)
    second = await conversations.record_inbound(
        _sms("+14155550134", "SM2"), Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    )
    assert first.client_id == second.client_id
    assert await pool.fetchval("SELECT verified FROM identities") is True
