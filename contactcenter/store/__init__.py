"""PostgreSQL, the source of truth: the connection pool, migrations, and one repository per subject."""

from __future__ import annotations

import json
import re

import asyncpg

from contactcenter.errors import Invalid

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """We keep no session state (no LISTEN, no session locks, no SET): the reset asyncpg runs on every release
    would be one more round trip per query for nothing."""


async def open_pool(url: str, *, schema: str = "public", min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    """A pool whose connections see `schema` first. Tests give each test its own schema."""
    if not _SCHEMA_NAME.match(schema):
        raise Invalid(f"database schema name {schema!r} is not a plain identifier", field="database_schema")
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        # The schema in the name tells an operator (and a test) whose connections these are. Cards are rendered
        # by the database (`cc_card`): in UTC, whatever the server's own time zone.
        server_settings={"search_path": schema, "application_name": f"contactcenter:{schema}", "TimeZone": "UTC"},
        init=_init_connection,
        reset=_keep_session,
    )
    return pool
