"""PostgreSQL: the router's recordings and the agents' closes of the same conversations never wait on each other.

Under load a router records a batch of contacts in one transaction, and every interaction it stores into an open
conversation holds that conversation's row (its foreign key's `KEY SHARE` lock) until the batch commits; the agents'
gateways meanwhile close the conversations they completed, in batches too. A close that locked its rows
`FOR UPDATE` waited for each recording batch holding one of them, and a recording batch for each close holding one
of its rows: the two pipelines took turns, and in opposite orders they deadlocked (a whole batch failed, then ran
call by call).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from contactcenter.identities import Identity
from contactcenter.store.conversations import CLOSE, RECORD_INBOUND_BARE, Closed, Conversations
from schema import Channel, IdentityKind, Interaction
from tests.conftest import DATABASE_URL

SENDER = "+14155550134"
WAIT_S = 10.0  # a deadline for what should happen at once, so a test that fails does not hang


def _sms(sid: str) -> Interaction:
    return Interaction(
        channel=Channel.SMS,
        provider_id=sid,
        from_address=SENDER,
        sender_kind=IdentityKind.PHONE,
        from_verified=True,
        received_at=datetime.now(UTC),
    )


@pytest.fixture
async def side_connection(database_schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own on the test's schema: another router's transaction, held open by the test."""
    conn = await asyncpg.connect(
        DATABASE_URL, server_settings={"search_path": database_schema, "application_name": "test side"}
    )
    yield conn
    await conn.close()


async def _assigned_conversation(pool: asyncpg.Pool) -> tuple[Conversations, uuid.UUID, uuid.UUID]:
    """A customer's conversation, recorded and assigned to an agent: (the store, the conversation, the agent)."""
    conversations = Conversations(pool)
    await pool.execute("INSERT INTO queues (id, name, channels) VALUES (gen_random_uuid(), 'service', '{sms}')")
    agent: uuid.UUID = await pool.fetchval(
        "INSERT INTO agents (id, name, token_hash) VALUES (gen_random_uuid(), 'a', '\\x00') RETURNING id"
    )
    recorded = await conversations.record_inbound(_sms("SM1"), Identity(IdentityKind.PHONE, SENDER, verified=True))
    await conversations.assign(recorded.conversation_id, agent)
    return conversations, recorded.conversation_id, agent


async def _record_in_open_transaction(conn: asyncpg.Connection, sid: str) -> uuid.UUID:
    """What a router's batch does to the customer's open conversation: a recording into it, not yet committed.
    Answers the conversation it joined."""
    interaction = _sms(sid)
    await conn.execute("BEGIN")
    row = await conn.fetchrow(
        RECORD_INBOUND_BARE,
        interaction.id,
        str(interaction.channel),
        str(interaction.direction),
        interaction.provider_id,
        str(IdentityKind.PHONE),
        SENDER,
        True,
        interaction.from_address,
        interaction.to_address,
        interaction.body,
        interaction.received_at,
    )
    assert row is not None and row["o_new"]
    conversation: uuid.UUID = row["o_conversation_id"]
    return conversation


async def _waiting_for_locks(pool: asyncpg.Pool, schema: str, *, held_by: int | None = None) -> list[str]:
    """What the pool's connections waiting for a lock wait for, and in which statement: the locks the backend
    `held_by` holds, or any (on the shared server a commit may wait a moment for other sessions' notifying
    commits: not what these tests are about)."""
    rows = await pool.fetch(
        "SELECT wait_event, query FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'"
        " AND ($2::int IS NULL OR $2 = ANY (pg_blocking_pids(pid)))",
        f"contactcenter:{schema}",
        held_by,
    )
    return [f"{row['wait_event']}: {row['query']}" for row in rows]


async def _finished_or_waiting(
    task: asyncio.Task[object], pool: asyncpg.Pool, schema: str, *, held_by: asyncpg.Connection
) -> list[str]:
    """Poll until the task has finished (answers []) or one of the pool's connections waits for a lock the
    connection `held_by` holds (answers what they wait for)."""
    async with asyncio.timeout(WAIT_S):
        while not task.done():
            if waiting := await _waiting_for_locks(pool, schema, held_by=held_by.get_server_pid()):
                return waiting
            await asyncio.sleep(0.01)
    return []


async def test_an_agent_closes_a_conversation_while_a_router_records_into_it_without_waiting(
    pool: asyncpg.Pool, side_connection: asyncpg.Connection, database_schema: str
) -> None:
    conversations, conversation, agent = await _assigned_conversation(pool)
    assert await _record_in_open_transaction(side_connection, "SM2") == conversation

    closing = asyncio.create_task(conversations.close(conversation, agent))
    try:
        waiting = await _finished_or_waiting(closing, pool, database_schema, held_by=side_connection)
        assert not waiting, f"the close waited for the router's recording to commit: {waiting}"
        assert await closing == Closed(Channel.SMS, None)
    finally:
        await side_connection.execute("COMMIT")
        await asyncio.wait_for(closing, WAIT_S)
    assert await pool.fetchval("SELECT count(*) FROM interactions WHERE conversation_id = $1", conversation) == 2


async def test_a_router_records_into_a_conversation_an_agent_is_closing_without_waiting(
    pool: asyncpg.Pool, side_connection: asyncpg.Connection, database_schema: str
) -> None:
    """The other way round: the close's transaction holds the row while a recording comes for it (the second
    recording of a batch, here alone)."""
    conversations, conversation, agent = await _assigned_conversation(pool)
    await side_connection.execute("BEGIN")
    # The close as it runs, its transaction left open: its rows locked as the statement locks them.
    assert len(await side_connection.fetch(CLOSE, conversation, agent)) == 1

    recording = asyncio.create_task(
        conversations.record_inbound(_sms("SM2"), Identity(IdentityKind.PHONE, SENDER, verified=True), with_card=False)
    )
    try:
        waiting = await _finished_or_waiting(recording, pool, database_schema, held_by=side_connection)
        assert not waiting, f"the recording waited for the agent's close to commit: {waiting}"
    finally:
        await side_connection.execute("COMMIT")
        await asyncio.wait_for(recording, WAIT_S)
    # Read before the close committed, the conversation was open: the contact joined it, as it always could (a
    # contact left in a conversation closed meanwhile is routed again: tests/e2e/test_sms_spine.py).
    assert (await recording).conversation_id == conversation


async def test_two_closes_of_one_conversation_at_once_write_its_closed_event_once(
    pool: asyncpg.Pool, side_connection: asyncpg.Connection, database_schema: str
) -> None:
    """A desktop's retry racing its first close (an answer lost): the row lock still takes the closes one after
    the other, so the second sees the first's result and writes no second `conversation.closed`."""
    conversations, conversation, agent = await _assigned_conversation(pool)
    await side_connection.execute("BEGIN")
    await side_connection.execute("SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE", conversation)
    # Three stores, three batchers: three statements in flight at once, all behind the lock held here.
    closes = [asyncio.create_task(Conversations(pool).close(conversation, agent)) for _ in range(2)]
    closes.append(asyncio.create_task(conversations.close(conversation, agent)))
    try:
        async with asyncio.timeout(WAIT_S):
            while len(await _waiting_for_locks(pool, database_schema)) < 3:
                await asyncio.sleep(0.01)
    finally:
        await side_connection.execute("COMMIT")
    assert await asyncio.wait_for(asyncio.gather(*closes), WAIT_S) == [Closed(Channel.SMS, None)] * 3
    events = await pool.fetchval(
        "SELECT count(*) FROM events WHERE type = 'conversation.closed' AND subject = $1", str(conversation)
    )
    assert events == 1
