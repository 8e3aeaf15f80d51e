"""`python -m bench.cards [--clients N]`: the card at scale. Loads N clients, 2N identities (a phone and an
email each) and 10N interactions with COPY into a schema of its own (1,000,000 by default: about six minutes
on the project's machine; pass a smaller `--clients` for a quick run), or measures a schema loaded and kept
before (`--keep`, then `--loaded-schema`), then measures, in one run, interleaved (one of each in turn):

- `api_lookup`: `GET /api/v1/clients/lookup?phone=…` through the API (the card with its first page);
- `sql_card`: the same card straight from PostgreSQL (`cc_card`), and `sql_point`: the raw point lookup of
  the identity, the floor beneath both;
- `resolution`: an inbound contact's recording for a known sender (`cc_record_inbound`: resolve, store,
  attach), and `sql_commit`: the smallest write PostgreSQL commits, the floor beneath it; and
  `resolution_unflushed`: the same recording not waiting for the log's flush to disk (its own work), and
  `resolution_without_events`: the same with events off (no outbox rows, no `NOTIFY`).

Prints one JSON line: the counts, the load's seconds, the host's load average, and p50/p99 in ms of each
measure. `python -m bench --database-schema` runs the whole service on a kept schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import SecretStr

from bench.schemas import loaded, own_schema
from contactcenter.host.app import Role, create_app
from contactcenter.settings import Settings

BATCH = 50_000
START = datetime(2024, 1, 1, tzinfo=UTC)
ADMIN = "bench-admin-token"
PREFIX = "bench_cards"
# The names a loaded schema may have (the generated `bench_cards_…`, or one given with `--name`, `cards_…`):
# `--loaded-schema` migrates the schema it is given, so it only takes these.
LOADED_NAME = r"(bench_)?cards_[a-z0-9_]{1,50}"


def _phone(n: int) -> str:
    return f"+1415{n:07d}"


# What the load leaves out while it copies, and builds after in one sort each: the timeline's and the
# conversation's indexes on interactions, the identities' by client. The unique keys stay (their constraints
# are referenced or relied on).
LOAD_DEFERS_INDEXES = (
    "interactions_timeline_page",
    "interactions_timeline_channel",
    "interactions_by_conversation",
    "identities_by_client",
)

INDEX_DEFINITIONS = """
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ANY ($1::text[])
"""


def _progress(message: str) -> None:
    print(f"bench.cards: {message}", file=sys.stderr, flush=True)


async def load(pool: asyncpg.Pool, clients: int) -> None:
    """Clients, their identities, one closed conversation each and ten interactions each, by (binary) COPY
    into tables with their unique keys, the other indexes built after by one sort each (`LOAD_DEFERS_INDEXES`).

    The session runs as a replica (`session_replication_role`): no foreign-key checks and no triggers row by
    row — the generator's rows are consistent by construction, and the activity counter's table is filled in
    one statement after. The tables stay logged, as in production: what is measured after the load is the
    tables the service runs on."""
    async with pool.acquire() as conn:
        # Per session, never ALTER SYSTEM: the server is shared.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        deferred = await conn.fetch(INDEX_DEFINITIONS, list(LOAD_DEFERS_INDEXES))
        for row in deferred:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        started = time.perf_counter()
        for first in range(0, clients, BATCH):
            await _copy_batch(conn, range(first, min(first + BATCH, clients)))
            if (first // BATCH) % 4 == 3:
                _progress(f"{first + BATCH} clients copied in {time.perf_counter() - started:.0f}s")
        for row in deferred:
            _progress(f"building {row['indexname']}")
            await conn.execute(row["indexdef"])
        _progress("counting activity")
        await conn.execute(
            "INSERT INTO client_activity (client_id, channel, interactions, last_at)"
            " SELECT client_id, channel, count(*), max(received_at) FROM interactions GROUP BY client_id, channel"
        )
        await conn.execute("RESET session_replication_role")
        await conn.execute("RESET maintenance_work_mem")
        _progress("vacuum analyze")
        # As autovacuum would, once: the visibility map for index-only scans, the planner's statistics. The
        # loaded tables only: a bare VACUUM would go through every schema of the shared database.
        await conn.execute("VACUUM ANALYZE clients, identities, conversations, interactions, client_activity")


async def _copy_batch(conn: PoolConnectionProxy, numbers: range) -> None:
    ids = [uuid.UUID(int=n + 1) for n in numbers]
    conversations = [uuid.UUID(int=(1 << 64) + n) for n in numbers]
    await conn.copy_records_to_table("clients", records=[(i,) for i in ids], columns=["id"])
    await conn.copy_records_to_table(
        "identities",
        records=[
            r
            for n, i in zip(numbers, ids, strict=True)
            for r in (("phone", _phone(n), i, True), ("email", f"client{n}@example.com", i, True))
        ],
        columns=["kind", "value", "client_id", "verified"],
    )
    await conn.copy_records_to_table(
        "conversations",
        records=[(v, i, "sms", "closed") for v, i in zip(conversations, ids, strict=True)],
        columns=["id", "client_id", "channel", "state"],
    )
    await conn.copy_records_to_table(
        "interactions",
        records=[
            (
                uuid.uuid4(),
                "sms" if k % 2 else "voice",
                "inbound",
                f"P{n}-{k}",
                i,
                v,
                _phone(n),
                "+15005550006",
                True,
                f"message {k}",
                START + timedelta(minutes=n % 100_000 + k),
            )
            for n, i, v in zip(numbers, ids, conversations, strict=True)
            for k in range(10)
        ],
        columns=[
            "id",
            "channel",
            "direction",
            "provider_id",
            "client_id",
            "conversation_id",
            "from_address",
            "to_address",
            "from_verified",
            "body",
            "received_at",
        ],
    )


def _figures(seconds: list[float]) -> dict[str, float]:
    seconds = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(seconds) * 1000, 3),
        "p99_ms": round(seconds[max(0, int(len(seconds) * 0.99) - 1)] * 1000, 3),
    }


RESOLVE = """
SELECT o_client_id FROM cc_record_inbound($1, 'sms', 'inbound', $2, 'phone', $3, true, $3, '+15005550006', 'hi', now())
"""
# The floor beneath a recording: the smallest write PostgreSQL commits (and flushes to its log), in the
# bench's own table of the schema.
COMMIT_FLOOR_TABLE = "CREATE TABLE IF NOT EXISTS bench_commit_floor (n bigint NOT NULL)"
COMMIT_FLOOR = "INSERT INTO bench_commit_floor (n) VALUES ($1)"


async def measure(pool: asyncpg.Pool, database_url: str, base_url: str, clients: int, samples: int) -> dict[str, Any]:
    """Each measure `samples` times, interleaved — one of each in turn — so that every measure meets the
    same moments of a shared host (a stall lands on all of them, not on whichever ran then); each on
    clients drawn apart, so that none reads pages another measure has just brought in."""
    await pool.execute(COMMIT_FLOOR_TABLE)
    # The same recording on a connection that does not wait for its commit to reach the disk: the recording's
    # own work, apart from the log's flush (which `sql_commit` measures alone).
    # And on one with events off (`cc.events`, migration 020): no outbox rows, no `NOTIFY` — whose commit
    # PostgreSQL 15 serialises across the whole server — the recording's share that is the events'.
    schema = await pool.fetchval("SELECT current_schema()")
    settings = {"search_path": schema, "TimeZone": "UTC"}
    unflushed = await asyncpg.connect(database_url, server_settings=settings | {"synchronous_commit": "off"})
    silent = await asyncpg.connect(database_url, server_settings=settings | {"cc.events": "off"})
    try:
        return await _interleaved(pool, {"unflushed": unflushed, "silent": silent}, base_url, clients, samples)
    finally:
        await unflushed.close()
        await silent.close()


async def _interleaved(
    pool: asyncpg.Pool, sessions: dict[str, asyncpg.Connection], base_url: str, clients: int, samples: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    url = f"{base_url}/api/v1/clients/lookup"
    async with aiohttp.ClientSession() as http:

        async def api_lookup(n: int) -> None:
            async with http.get(url, params={"phone": _phone(n)}, headers=headers) as response:
                assert response.status == 200, response.status
                await response.read()

        async def sql_card(n: int) -> None:
            await pool.fetchval(
                "SELECT cc_card((SELECT client_id FROM identities WHERE kind = 'phone' AND value = $1), 50)",
                _phone(n),
            )

        async def sql_point(n: int) -> None:
            await pool.fetchval("SELECT client_id FROM identities WHERE kind = 'phone' AND value = $1", _phone(n))

        async def sql_commit(n: int) -> None:
            await pool.execute(COMMIT_FLOOR, n)

        async def resolution(n: int) -> None:
            await pool.fetchval(RESOLVE, uuid.uuid4(), f"R{uuid.uuid4().hex}", _phone(n))

        async def resolution_unflushed(n: int) -> None:
            await sessions["unflushed"].fetchval(RESOLVE, uuid.uuid4(), f"U{uuid.uuid4().hex}", _phone(n))

        async def resolution_without_events(n: int) -> None:
            await sessions["silent"].fetchval(RESOLVE, uuid.uuid4(), f"S{uuid.uuid4().hex}", _phone(n))

        calls: dict[str, Callable[[int], Awaitable[object]]] = {
            "api_lookup": api_lookup,
            "sql_card": sql_card,
            "sql_point": sql_point,
            "sql_commit": sql_commit,
            "resolution": resolution,
            "resolution_unflushed": resolution_unflushed,
            "resolution_without_events": resolution_without_events,
        }
        rng = random.Random(19)
        warm = min(50, samples)  # plans, caches, connections
        picks = {name: [rng.randrange(clients) for _ in range(warm + samples)] for name in calls}
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        for n in range(warm + samples):
            for name, call in calls.items():
                started = time.perf_counter()
                await call(picks[name][n])
                if n >= warm:
                    seconds[name].append(time.perf_counter() - started)
    return {name: _figures(taken) for name, taken in seconds.items()}


async def run(
    database_url: str, clients: int, samples: int, keep: bool, loaded_schema: str | None, name: str | None = None
) -> dict[str, Any]:
    schemas = (
        loaded(database_url, loaded_schema) if loaded_schema else own_schema(database_url, PREFIX, keep=keep, name=name)
    )
    async with schemas as (schema, pool):
        load_seconds = None
        if loaded_schema is None:
            started = time.perf_counter()
            await load(pool, clients)
            load_seconds = round(time.perf_counter() - started, 3)  # a small load takes under 0.05 s
            if keep:
                _progress(f"kept the loaded schema {schema}: measure again with --loaded-schema {schema}")
        counts = await _counts(pool)
        settings = Settings(
            _env_file=None,
            database_url=SecretStr(database_url),
            database_schema=schema,
            namespace=schema,
            admin_token=SecretStr(ADMIN),
            default_region="US",
        )
        runner = aiohttp.web.AppRunner(create_app(settings, Role.API))
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # the port the OS gave
        loads = [round(os.getloadavg()[0], 2)]
        try:
            figures = await measure(pool, database_url, f"http://127.0.0.1:{port}", counts["clients"], samples)
        finally:
            await runner.cleanup()
    return {
        "bench": "cards",
        "schema": schema,
        **counts,
        "load_seconds": load_seconds,
        # The host's load (1-minute average) as the measures began and ended: other work shares the cores.
        "load_average": [loads[0], round(os.getloadavg()[0], 2)],
        **figures,
    }


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    """What the schema holds; the clients the loader made are numbered from 0 (their phones `_phone(n)`)."""
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM clients) AS clients, (SELECT count(*) FROM identities) AS identities,"
        " (SELECT reltuples::bigint FROM pg_class WHERE oid = 'interactions'::regclass) AS interactions"
    )
    assert row is not None  # scalar subqueries answer one row
    return {"clients": row["clients"], "identities": row["identities"], "interactions_estimated": row["interactions"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--keep", action="store_true", help="keep the loaded schema (for EXPLAIN, or to measure again without a load)"
    )
    parser.add_argument(
        "--loaded-schema",
        help=f"measure a schema a run with --keep loaded ({PREFIX}_… or its --name) instead of loading one; it is "
        "migrated to the latest migration and kept (drop it with DROP SCHEMA … CASCADE when done)",
    )
    parser.add_argument(
        "--name",
        help="the kept schema's name (with --keep; cards_… or bench_cards_…), e.g. cards_full; it must not exist",
    )
    args = parser.parse_args()
    if args.name is not None and (not args.keep or not re.fullmatch(LOADED_NAME, args.name)):
        parser.error(f"--name: {args.name!r} needs --keep and must match {LOADED_NAME}")
    if args.clients < 1 or args.samples < 1:
        parser.error("--clients and --samples must be at least 1")
    if args.loaded_schema is not None and not re.fullmatch(LOADED_NAME, args.loaded_schema):
        parser.error(f"--loaded-schema: {args.loaded_schema!r} is not a schema this bench loaded ({PREFIX}_…)")
    result = asyncio.run(run(args.database_url, args.clients, args.samples, args.keep, args.loaded_schema, args.name))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
