"""The card's cost follows its first page, never its history: the same work (buffers PostgreSQL touches, all
statements nested in `cc_card` counted) at 10 entries and at 10,000; and the pages after it, by cursor, give
every entry once, newest first, of one channel or all."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from contactcenter.store.cards import TIMELINE_LIMIT, Cards
from schema import Channel
from tests.conftest import DATABASE_URL

# A client with `$2` interactions, alternating sms and voice, one second apart.
CLIENT_WITH_HISTORY = """
WITH c AS (INSERT INTO clients (id) VALUES ($1) RETURNING id),
     i AS (INSERT INTO identities (kind, value, client_id, verified) SELECT 'phone', $3, id, true FROM c),
     v AS (INSERT INTO conversations (id, client_id, channel, state)
           SELECT gen_random_uuid(), id, 'sms', 'closed' FROM c RETURNING id, client_id)
INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id, from_address, to_address,
                          from_verified, body, received_at)
SELECT gen_random_uuid(), CASE WHEN n % 2 = 0 THEN 'sms' ELSE 'voice' END, 'inbound', 'P' || $1 || n, v.client_id,
       v.id, $3, '+15005550006', true, 'entry ' || n, timestamptz '2026-01-01' + make_interval(secs => n)
FROM v, generate_series(1, $2) AS n
"""


async def _client(pool: asyncpg.Pool, entries: int, phone: str) -> uuid.UUID:
    client_id = uuid.uuid4()
    # Loaded at once, as the bench loads: through the activity trigger, the client's one row would be rewritten
    # once per entry, and while other sessions' snapshots hold the dead versions no vacuum can clear them — a
    # cost of the loading, not of the card. The counts are written once, as the trigger would have.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE interactions DISABLE TRIGGER interactions_counted")
        await conn.execute(CLIENT_WITH_HISTORY, client_id, entries, phone)
        await conn.execute(
            "INSERT INTO client_activity (client_id, channel, interactions, last_at)"
            " SELECT client_id, channel, count(*), max(received_at) FROM interactions WHERE client_id = $1"
            " GROUP BY client_id, channel",
            client_id,
        )
        await conn.execute("ALTER TABLE interactions ENABLE TRIGGER interactions_counted")
    await pool.execute("ANALYZE interactions")
    return client_id


async def _buffers_of_card(
    pool: asyncpg.Pool, client_id: uuid.UUID, *, between: Callable[[], Awaitable[None]] | None = None
) -> int:
    """Shared buffers of the tables and indexes read by every statement `cc_card` runs (auto_explain, nested
    statements included), on its second call (`between` runs before it, after the first)."""
    plans: list[str] = []

    def listen(_conn: object, message: Any) -> None:
        plans.append(message.message)

    async with pool.acquire() as conn:
        conn.add_log_listener(listen)
        await conn.execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;"
            " SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;"
            " SET auto_explain.log_format = json; SET client_min_messages = log"
        )
        try:
            await conn.fetchval("SELECT cc_card($1, $2)", client_id, TIMELINE_LIMIT)  # plans cached, then:
            if between is not None:
                await between()
            plans.clear()
            await conn.fetchval("SELECT cc_card($1, $2)", client_id, TIMELINE_LIMIT)
        finally:
            await conn.execute("RESET client_min_messages; RESET auto_explain.log_min_duration")
            conn.remove_log_listener(listen)
    total = 0
    for text in plans:
        body = text[text.index("{") :]
        total += _buffers_read_by_scans(json.loads(body)["Plan"])
    assert total > 0, plans
    return total


def _buffers(plan: dict[str, Any]) -> int:
    """The node's buffers, its children's included."""
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


def _buffers_read_by_scans(plan: dict[str, Any]) -> int:
    """The buffers the plan's scans of tables and indexes touched, each scan's own (its node's less its children's).
    A node's count holds everything done while it ran: a node that calls a function holds the function's
    statements — and their planning and catalog lookups, which other sessions' DDL brings into any call (a CREATE
    or DROP SCHEMA anywhere in the database resets every session's cached plans; a burst of catalog changes, as
    each test's fixture migrating its schema makes, empties their catalog caches). That costs the same whatever
    the history, and counted it made the comparison below fail now and then, by a hundred times what the card's
    scans read. Each statement nested in `cc_card` is logged with its own plan, so its scans are counted there,
    once."""
    children = plan.get("Plans", [])
    own = _buffers(plan) - sum(_buffers(child) for child in children)
    scanned = own if "Relation Name" in plan or "Index Name" in plan else 0
    return scanned + sum(_buffers_read_by_scans(child) for child in children)


async def test_the_card_costs_the_same_at_ten_entries_and_at_ten_thousand(pool: asyncpg.Pool) -> None:
    small = await _client(pool, 10, "+14155550191")
    large = await _client(pool, 10_000, "+14155550192")
    small_cost, large_cost = await _buffers_of_card(pool, small), await _buffers_of_card(pool, large)
    # The large history's indexes may be a level deeper: a few more pages, never the history's hundreds. (Half
    # the margin this had when every statement's total was summed, which counted most reads twice.)
    assert large_cost <= small_cost + 15, (small_cost, large_cost)
    card = json.loads(await Cards(pool).by_id(large) or "")
    assert card["counts"] == {"sms": 5000, "voice": 5000}
    assert card["last_contact_at"].startswith("2026-01-01T02:46:40")
    assert len(card["timeline"]) == TIMELINE_LIMIT and card["timeline"][0]["body"] == "entry 10000"


# Another session's DDL. A schema made and dropped resets every session's cached plans; a transaction of many
# catalog changes (a test's fixture migrating its schema) overflows the other sessions' invalidation queues, which
# empties their catalog caches.
OTHER_SESSIONS_DDL = {
    "a schema made and dropped": 'CREATE SCHEMA "{name}"; DROP SCHEMA "{name}"',
    "a burst of catalog changes": (
        "DO $$ BEGIN FOR n IN 1..500 LOOP EXECUTE format('CREATE TEMP TABLE {name}_%s (id int)', n); END LOOP; END $$"
    ),
}


@pytest.mark.parametrize("ddl", OTHER_SESSIONS_DDL.values(), ids=OTHER_SESSIONS_DDL.keys())
async def test_the_card_s_cost_leaves_out_what_other_sessions_ddl_brings_into_the_call_measured(
    pool: asyncpg.Pool, ddl: str
) -> None:
    """The comparison above measures the card's reads, not the planning and catalog lookups another session's DDL
    brings into whichever call comes next: with that DDL between the first call and the one measured, the same."""
    client_id = await _client(pool, 10, "+14155550196")
    quiet = await _buffers_of_card(pool, client_id)

    async def other_session_ddl() -> None:
        other = await asyncpg.connect(DATABASE_URL)
        try:
            await other.execute(ddl.format(name=f"ddl_{uuid.uuid4().hex[:12]}"))
        finally:
            await other.close()  # its temporary tables go with it

    assert await _buffers_of_card(pool, client_id, between=other_session_ddl) == quiet


async def test_the_pages_after_the_first_give_every_entry_once_newest_first(pool: asyncpg.Pool) -> None:
    client_id = await _client(pool, 1_001, "+14155550193")
    cards = Cards(pool)
    for channel, expected in ((None, range(1001, 0, -1)), (Channel.VOICE, range(1001, 0, -2))):
        seen: list[str] = []
        cursor = None
        while True:
            text = await cards.timeline(client_id, limit=200, cursor=cursor, channel=channel)
            page = json.loads(text or "")
            seen += [entry["body"] for entry in page["entries"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"entry {n}" for n in expected]
    assert await cards.timeline(uuid.uuid4(), limit=10) is None


# Other cards of the center: `$1` clients, each with a phone; then, as in the center's day, visitors and open
# conversations the planner's statistics have not seen yet.
OTHER_CARDS = """
INSERT INTO clients (id) SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid
FROM generate_series(1, $1) AS n;
"""
OTHER_PHONES = """
INSERT INTO identities (kind, value, client_id, verified)
SELECT 'phone', '+1628' || lpad(n::text, 7, '0'), ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, true
FROM generate_series(1, $1) AS n
"""
OTHERS_VISIT_AND_WRITE = """
WITH visitors AS (
    INSERT INTO identities (kind, value, client_id, verified)
    SELECT 'visitor', gen_random_uuid()::text, ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, true
    FROM generate_series(1, $1) AS n)
INSERT INTO conversations (id, client_id, channel)
SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 'chat'
FROM generate_series(1, $1) AS n
"""


async def test_the_card_costs_the_same_when_visitors_and_open_conversations_outgrow_the_statistics(
    pool: asyncpg.Pool,
) -> None:
    """Statistics lag a center's day (autovacuum analyses a table again after a tenth of it changed): the
    card's reads of its visitors and open conversations must not become reads of the center's (migration 027;
    before it, each card read every visitor and every open conversation)."""
    client_id = await _client(pool, 10, "+14155550194")
    others = 3000
    async with pool.acquire() as conn:
        await conn.execute(OTHER_CARDS, others)
        await conn.execute(OTHER_PHONES, others)
        # The statistics as a quiet night left them (no visitor, no open conversation), and kept so.
        await conn.execute("ANALYZE identities; ANALYZE conversations")
        await conn.execute("ALTER TABLE identities SET (autovacuum_enabled = off)")
        await conn.execute("ALTER TABLE conversations SET (autovacuum_enabled = off)")
    quiet = await _buffers_of_card(pool, client_id)
    await pool.execute(OTHERS_VISIT_AND_WRITE, others)
    await pool.expire_connections()  # no plan made before the day is kept: each connection plans anew
    busy = await _buffers_of_card(pool, client_id)
    assert busy <= quiet + 10, (quiet, busy)
    card = json.loads(await Cards(pool).by_id(client_id) or "")
    assert card["open_conversations"] == [] and card["claims"] == []


# A client whose history is mostly of one channel: `$2` voice entries, and before them 100 SMS.
CLIENT_OF_ONE_CHANNEL = """
WITH c AS (INSERT INTO clients (id) VALUES ($1) RETURNING id),
     v AS (INSERT INTO conversations (id, client_id, channel, state)
           SELECT gen_random_uuid(), id, 'voice', 'closed' FROM c RETURNING id, client_id)
INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id, from_address, to_address,
                          from_verified, body, received_at)
SELECT gen_random_uuid(), CASE WHEN n <= 100 THEN 'sms' ELSE 'voice' END, 'inbound', 'Q' || $1 || n, v.client_id,
       v.id, '+14155550195', '+15005550006', true, 'entry ' || n, timestamptz '2026-01-01' + make_interval(secs => n)
FROM v, generate_series(1, $2) AS n
"""
TIMELINE_PAGE_OF = "SELECT cc_timeline_page(ARRAY[$1::uuid], $2, $3, $4, $5)::text"


async def test_each_timeline_page_is_planned_once_per_connection_and_reads_the_page_only(pool: asyncpg.Pool) -> None:
    """A page's plan is made once per connection (a generic plan: its conditions on the parameters, not on the
    values of the call), and whatever the case — one channel or all, from the newest or from a cursor deep in
    the history — that plan reads the index from where the page starts and stops after it: the SMS page of a
    client of 10,000 calls does not read the calls, the page after a cursor does not read what is newer."""
    client_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE interactions DISABLE TRIGGER interactions_counted")
        await conn.execute(CLIENT_OF_ONE_CHANNEL, client_id, 10_000)
        await conn.execute("ALTER TABLE interactions ENABLE TRIGGER interactions_counted")
    await pool.execute("ANALYZE interactions")
    middle = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=5_000)
    among_sms = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=80)
    cases = {
        "all, newest": (None, None, None),
        "sms, newest": (None, None, "sms"),
        "all, after a cursor": (middle, uuid.UUID(int=0), None),
        "sms, after a cursor": (among_sms, uuid.UUID(int=0), "sms"),
    }
    async with pool.acquire() as conn:
        for name, (before_at, before_id, channel) in cases.items():
            for _ in range(8):  # past the plan cache's first five plans, made for their values
                await conn.fetchval(TIMELINE_PAGE_OF, client_id, TIMELINE_LIMIT, before_at, before_id, channel)
            plans = await _plans_reading_interactions(
                conn, TIMELINE_PAGE_OF, client_id, TIMELINE_LIMIT, before_at, before_id, channel
            )
            assert plans, name
            for plan in plans:
                assert str(client_id) not in json.dumps(plan), (name, "planned for this call's values", plan)
            touched = sum(_buffers(plan["Plan"]) for plan in plans)
            assert touched <= 20, (name, touched, plans)


async def _plans_reading_interactions(conn: Any, query: str, *args: object) -> list[dict[str, Any]]:
    """The plans (auto_explain, JSON) of the statements nested in `query` that read the interactions."""
    logged: list[str] = []

    def listen(_conn: object, message: Any) -> None:
        logged.append(message.message)

    conn.add_log_listener(listen)
    # Verbose: a plan made for the call's values shows them (`unnest('{…}'::uuid[])`), a generic one `$1`.
    await conn.execute(
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;"
        " SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;"
        " SET auto_explain.log_verbose = on; SET auto_explain.log_format = json; SET client_min_messages = log"
    )
    try:
        await conn.fetchval(query, *args)
    finally:
        await conn.execute(
            "RESET client_min_messages; RESET auto_explain.log_min_duration; RESET auto_explain.log_verbose"
        )
        conn.remove_log_listener(listen)
    plans = [json.loads(text[text.index("{") :]) for text in logged]
    return [plan for plan in plans if '"Relation Name": "interactions"' in json.dumps(plan["Plan"])]


async def test_every_statement_of_the_card_is_planned_once_per_connection(pool: asyncpg.Pool) -> None:
    """`cc_card`'s statements keep one generic plan per connection (migration 029): planned for each call's
    values, its large statement cost 1.4 ms of planning for 0.25 ms of work — the spine's regression of the
    tenth session. A plan made for the call shows the client's id as a constant; a generic one shows `$n`."""
    client_id = await _client(pool, 10, "+14155550193")
    logged: list[str] = []

    def listen(_conn: object, message: Any) -> None:
        logged.append(message.message)

    async with pool.acquire() as conn:
        for _ in range(8):  # past the plan cache's first five plans, made for their values
            await conn.fetchval("SELECT cc_card($1, $2)", client_id, TIMELINE_LIMIT)
        conn.add_log_listener(listen)
        await conn.execute(
            "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
            " SET auto_explain.log_verbose = on; SET auto_explain.log_format = json; SET client_min_messages = log"
        )
        try:
            await conn.fetchval("SELECT cc_card($1, $2)", client_id, TIMELINE_LIMIT)
        finally:
            await conn.execute(
                "RESET client_min_messages; RESET auto_explain.log_min_duration; RESET auto_explain.log_verbose"
            )
            conn.remove_log_listener(listen)
    plans = [json.loads(text[text.index("{") :]) for text in logged]
    nested = [plan for plan in plans if "cc_card" not in plan["Query Text"]]
    assert nested, plans
    for plan in nested:
        assert str(client_id) not in json.dumps(plan["Plan"]), ("planned for this call's values", plan)
