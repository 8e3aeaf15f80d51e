"""Embedded mode keeps production's promise across a crash: every SMS acknowledged to Twilio (200) is stored
once after a `kill -9` and a restart on the same data directory, and the embedded PostgreSQL left running by
the killed process is taken over by the next run and stopped by its normal stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest

from bench.ports import free_port
from contactcenter.host.embedded import start_postgres
from contactcenter.settings import Settings
from tests.running import ADMIN_TOKEN, TWILIO_AUTH_TOKEN, RunningService, wait_ready

BURST = 40


@asynccontextmanager
async def _embedded(home: Path) -> AsyncIterator[tuple[RunningService, asyncio.subprocess.Process]]:
    """The service in embedded layout as its own process, on `home`'s data dir; the caller ends it."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CC_")}
    env |= {
        "CC_HTTP_PORT": str(port),
        "CC_DATA_DIR": str(home / "var"),
        "CC_DEMO_ON_FIRST_START": "false",
        "CC_ADMIN_TOKEN": ADMIN_TOKEN,
        "CC_TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
    }
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "contactcenter", "serve", cwd=home, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base_url, process)
            settings = Settings(_env_file=None, twilio_account_sid="AC" + "0" * 32)
            yield RunningService(base_url, settings, http, app=None), process  # type: ignore[arg-type]  # another process: no app here
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _postmaster_pid(home: Path) -> int | None:
    pid_file = home / "var" / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().splitlines()[0])


def _socket_dir(home: Path) -> str:
    return (home / "var" / "postgres" / "postmaster.pid").read_text().splitlines()[4]


async def _stored(home: Path, provider_ids: list[str]) -> dict[str, int]:
    """How many times each of `provider_ids` is stored, read from the embedded PostgreSQL itself."""
    conn = await asyncpg.connect(f"postgresql://postgres:@/postgres?host={_socket_dir(home)}")
    try:
        rows = await conn.fetch(
            "SELECT provider_id, count(*) AS n FROM interactions WHERE provider_id = ANY($1) GROUP BY provider_id",
            provider_ids,
        )
    finally:
        await conn.close()
    return {row["provider_id"]: row["n"] for row in rows}


async def _stored_eventually(home: Path, provider_ids: list[str]) -> dict[str, int]:
    async with asyncio.timeout(60):
        while len(stored := await _stored(home, provider_ids)) < len(provider_ids):
            await asyncio.sleep(0.2)
    return stored


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """The service's working directory; a PostgreSQL a failed test leaves running there is stopped after it."""
    yield tmp_path
    postgres = _postmaster_pid(tmp_path)
    if postgres is not None and psutil.pid_exists(postgres):
        with contextlib.suppress(psutil.Error):
            server = psutil.Process(postgres)
            if str(tmp_path) in " ".join(server.cmdline()):
                server.terminate()


async def test_sms_acknowledged_before_a_kill_9_are_stored_once_after_a_restart(home: Path) -> None:
    sids = [f"SM{uuid.uuid4().hex}" for _ in range(BURST)]
    async with _embedded(home) as (service, process):
        await service.create_queue("sales", ["sms"])
        answers = await asyncio.gather(
            *(service.post_sms(sender=f"+1415555{n:04d}", body="hello", message_sid=sid) for n, sid in enumerate(sids))
        )
        process.send_signal(signal.SIGKILL)
        await process.wait()
    acknowledged = [sid for sid, answer in zip(sids, answers, strict=True) if answer.status == 200]
    assert acknowledged, "the burst was acknowledged"
    postgres = _postmaster_pid(home)
    assert postgres is not None and psutil.pid_exists(postgres), "the killed run left its PostgreSQL running"

    async with _embedded(home) as (_, process):
        stored = await _stored_eventually(home, acknowledged)
        assert stored == dict.fromkeys(acknowledged, 1)
        assert _postmaster_pid(home) == postgres, "the next run reuses the PostgreSQL left running"
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 30) == 0

    # A normal stop of the run that took the server over stops it.
    async with asyncio.timeout(30):
        while psutil.pid_exists(postgres) and psutil.Process(postgres).status() != psutil.STATUS_ZOMBIE:
            await asyncio.sleep(0.1)


async def test_a_pid_file_left_by_a_server_gone_with_a_reboot_does_not_stop_the_next_start(home: Path) -> None:
    data_dir = home / "var"
    postgres = await start_postgres(data_dir)
    pid_file = data_dir / "postgres" / "postmaster.pid"
    left = pid_file.read_text().splitlines()
    await postgres.stop()
    # After a reboot the pid in the file belongs to some other process.
    stranger = await asyncio.create_subprocess_exec("sleep", "60")
    pid_file.write_text("\n".join([str(stranger.pid), *left[1:]]) + "\n")
    try:
        postgres = await start_postgres(data_dir)
        try:
            conn = await asyncpg.connect(postgres.url)
            assert await conn.fetchval("SELECT 1") == 1
            await conn.close()
        finally:
            await postgres.stop()
        assert stranger.returncode is None, "the stranger was left alone"
    finally:
        stranger.kill()
        await stranger.wait()
