"""Fixtures of the contract tests: `pool` is the shared `migrated_pool` (tests/conftest.py) under the name
the store's contract tests use."""

from __future__ import annotations

import asyncpg
import pytest


@pytest.fixture
def pool(migrated_pool: asyncpg.Pool) -> asyncpg.Pool:
    """A pool on the test's own, migrated schema."""
    return migrated_pool
