"""Applies the numbered SQL files of `migrations/` in order, once each, under an advisory lock so that
several processes starting together do not race."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
LOCK = "SELECT pg_advisory_xact_lock(hashtext('contactcenter.migrate.' || current_schema()))"
APPLIED = "SELECT version FROM schema_migrations"
RECORD = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"


def _migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("contactcenter.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply what is missing; return the names applied."""
    applied_now: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(LOCK)
        await conn.execute(CREATE_LEDGER)
        done = {row["version"] for row in await conn.fetch(APPLIED)}
        for version, name, sql in _migration_files():
            if version in done:
                continue
            log.info("applying migration %s", name)
            await conn.execute(sql)
            await conn.execute(RECORD, version, name)
            applied_now.append(name)
    return applied_now
