"""A migrated PostgreSQL schema of a bench's own, dropped afterwards (unless kept, to look at it or to measure
it again), or one an earlier run kept."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from contactcenter.store import open_pool
from contactcenter.store.migrate import migrate


@contextlib.asynccontextmanager
async def _migrated_pool(database_url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url, schema=schema)
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def own_schema(
    database_url: str, prefix: str, *, keep: bool = False, name: str | None = None
) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """The schema's name (`name`, or the prefix and a random suffix) and a pool on it, migrated; creating it
    fails if the schema exists, so that a named run never loads into someone else's."""
    schema = name or f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            async with _migrated_pool(database_url, schema) as pool:
                yield schema, pool
        finally:
            if not keep:
                await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def loaded(database_url: str, schema: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A schema an earlier run loaded and kept: migrated to the latest migration, never dropped."""
    admin = await asyncpg.connect(database_url)
    try:
        exists = await admin.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema)
    finally:
        await admin.close()
    if not exists:
        raise SystemExit(f"no schema {schema!r}: load one with --keep first")
    async with _migrated_pool(database_url, schema) as pool:
        yield schema, pool
