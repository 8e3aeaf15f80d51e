"""Fixtures for the real services. Every test gets its own namespace (exchange, queue and Redis key names)
and its own PostgreSQL schema, and removes them afterwards, so tests run in any order and twice.

The suite runs against real PostgreSQL, Redis and RabbitMQ (`TEST_DATABASE_URL`, `TEST_REDIS_URL`,
`TEST_AMQP_URL`, defaulting to the local servers). A server that does not answer fails the run: nothing is
skipped.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest

from tests.running import (
    ADMIN_TOKEN,
    TWILIO_ACCOUNT_SID,
    TWILIO_API_KEY_SECRET,
    TWILIO_API_KEY_SID,
    TWILIO_AUTH_TOKEN,
    TWILIO_TWIML_APP_SID,
    FakeTwilioApi,
    RunningService,
    run_service,
)

if TYPE_CHECKING:
    import asyncpg

    from contactcenter.settings import Settings

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _unanswered(url: str, default_port: int, what: str) -> str | None:
    """Why the server at `url` cannot be used, or None when it answers."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"{what} at {host}:{port} does not answer ({exc}); start it (see .ci/run)"
    return None


SERVERS_DOWN = pytest.StashKey[str]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """A server that does not answer fails the run, nothing is skipped. Checked in the xdist controller (which
    stops before any worker starts) and again in each worker: a worker that exited here would be replaced by
    xdist again and again, so a worker's tests fail instead, each naming the server."""
    down = [
        reason
        for reason in (
            _unanswered(DATABASE_URL, 5432, "PostgreSQL"),
            _unanswered(REDIS_URL, 6379, "Redis"),
            _unanswered(AMQP_URL, 5672, "RabbitMQ"),
        )
        if reason is not None
    ]
    if not down:
        return
    if hasattr(session.config, "workerinput"):
        session.config.stash[SERVERS_DOWN] = "; ".join(down)
    else:
        pytest.exit("; ".join(down), returncode=3)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if (down := item.config.stash.get(SERVERS_DOWN, None)) is not None:
        pytest.fail(down, pytrace=False)


TESTS = Path(__file__).parent
# Tests that start servers or whole service layouts of their own and break or load them: each group on one worker,
# one test after another (`--dist loadgroup`), the two groups beside each other. The fault tests kill and restart
# servers and wait on short publish timeouts, which another fault test's restarts beside them would stretch; the
# bench's tests start several service processes, each with its pool of PostgreSQL connections (the shared server
# allows 100 in all: four benches at once exhausted them).
GROUPS = {
    TESTS / "faults": "faults",
    TESTS / "e2e" / "test_bench.py": "bench",
    TESTS / "e2e" / "test_bench_chat.py": "bench",
}


def _group(item: pytest.Item) -> str | None:
    return next((group for path, group in GROUPS.items() if item.path.is_relative_to(path)), None)


def pytest_itemcollected(item: pytest.Item) -> None:
    # As each test is collected: xdist reads the group into the test's id in its own `modifyitems`.
    if (group := _group(item)) is not None:
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)  # after xdist's own, which names the group in the test's id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The groups first: they are the longest lines of the run, which the other workers fill beside. A pytest
    on which xdist's `loadgroup` would spread a group anyway (pytest-xdist#1386) stops the run."""
    items.sort(key=lambda item: _group(item) is None)  # stable: the order within each part is kept
    if getattr(config.option, "loadgroup", False):
        spread = [item.nodeid for item in items if (group := _group(item)) and not item.nodeid.endswith(f"@{group}")]
        if spread:
            raise pytest.UsageError(f"--dist loadgroup did not group {spread[0]} (pytest-xdist#1386)")


@pytest.fixture
def namespace() -> str:
    """A name no other test uses: prefix for exchanges, queues and Redis keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    return AMQP_URL


@pytest.fixture
async def database_schema(namespace: str) -> AsyncIterator[str]:
    """An empty PostgreSQL schema of the test's own, dropped afterwards."""
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{namespace}"')
        yield namespace
        await conn.execute(f'DROP SCHEMA "{namespace}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def unmigrated_pool(database_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own schema, nothing applied: for what keeps tables of its own (the embedded bus's
    journal)."""
    from contactcenter.store import open_pool

    opened = await open_pool(DATABASE_URL, schema=database_schema)
    yield opened
    await opened.close()


@pytest.fixture
async def migrated_pool(database_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own schema, the migrations applied."""
    from contactcenter.store import open_pool
    from contactcenter.store.migrate import migrate

    opened = await open_pool(DATABASE_URL, schema=database_schema)
    await migrate(opened)
    yield opened
    await opened.close()


@pytest.fixture
async def redis_cleanup(namespace: str) -> AsyncIterator[None]:
    """Deletes the test's Redis keys afterwards."""
    import redis.asyncio as aioredis

    yield
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def amqp_cleanup(namespace: str) -> AsyncIterator[None]:
    """Deletes the test's exchanges and queues afterwards (quorum queues refuse `if_unused`, see docs/design.md)."""
    import aio_pika

    yield
    connection = await aio_pika.connect(AMQP_URL)
    try:
        for queue in (f"{namespace}.router", f"{namespace}.dead-letters", f"{namespace}.webhooks"):
            channel = await connection.channel()
            await channel.queue_delete(queue, if_unused=False, if_empty=False)
        for exchange in ("interactions", "agents", "dead", "events"):
            channel = await connection.channel()
            await channel.exchange_delete(f"{namespace}.{exchange}")
    finally:
        await connection.close()


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilioApi]:
    api = FakeTwilioApi(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def service_settings(
    namespace: str, database_schema: str, redis_cleanup: None, amqp_cleanup: None, fake_twilio: FakeTwilioApi
) -> Iterator[Settings]:
    """Settings of a service on the real PostgreSQL, Redis and RabbitMQ, in the test's own namespace."""
    from pydantic import SecretStr

    from contactcenter.settings import Settings

    yield Settings(
        _env_file=None,
        database_url=SecretStr(DATABASE_URL),
        redis_url=SecretStr(REDIS_URL),
        amqp_url=SecretStr(AMQP_URL),
        namespace=namespace,
        database_schema=database_schema,
        admin_token=SecretStr(ADMIN_TOKEN),
        twilio_auth_token=SecretStr(TWILIO_AUTH_TOKEN),
        twilio_account_sid=TWILIO_ACCOUNT_SID,
        twilio_api_base=fake_twilio.base_url,
        twilio_api_key_sid=TWILIO_API_KEY_SID,
        twilio_api_key_secret=SecretStr(TWILIO_API_KEY_SECRET),
        twilio_twiml_app_sid=TWILIO_TWIML_APP_SID,
        default_region="US",
        http_port=0,
    )


@pytest.fixture
async def service(service_settings: Settings) -> AsyncIterator[RunningService]:
    """The whole service (`--role all`) on the real servers, listening on a free loopback port."""
    async with run_service(service_settings) as running:
        yield running
