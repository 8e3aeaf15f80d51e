"""Fixtures of the fault tests: private servers a test may break, and settings that notice a fault quickly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from contactcenter.settings import Settings
from tests.faults.private import PrivatePostgres, PrivateRabbitMQ, PrivateRedis, running


def faulty(settings: Settings, **update: Any) -> Settings:
    """The service's settings, with timeouts short enough that a fault shows (and heals) within a test."""
    for key in ("database_url", "redis_url", "amqp_url"):
        if isinstance(update.get(key), str):
            update[key] = SecretStr(update[key])
    return settings.model_copy(
        update={
            "publish_timeout_seconds": 1.0,
            "live_check_seconds": 0.2,
            "reservation_timeout_seconds": 3.0,
            **update,
        }
    )


@pytest.fixture
async def private_rabbitmq() -> AsyncIterator[PrivateRabbitMQ]:
    server = PrivateRabbitMQ()
    async with running(server):
        yield server


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    server = PrivatePostgres()
    async with running(server):
        yield server


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    async with running(server):
        yield server
