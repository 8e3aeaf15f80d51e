"""What the contract tests of the store share: a pool on the test's own schema, migrated."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from contactcenter.store import open_pool
from contactcenter.store.migrate import migrate


@pytest.fixture
async def pool(database_url: str, database_schema: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await open_pool(database_url, schema=database_schema)
    await migrate(opened)
    yield opened
    await opened.close()
