"""Embedded defaults for a newcomer's machine: a real PostgreSQL from `pgserver` (data under `./var/`),
an in-process Redis (`fakeredis` running the same Lua scripts), the in-process bus."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedPostgres:
    url: str
    stop: Callable[[], Awaitable[None]]


async def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start the embedded PostgreSQL, or take over the one a killed run left running; its `stop` stops it
    unless another live process uses it too."""
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime folder as it loads; without a login session (a container, a
        # CI runner) platformdirs warns and falls back to /tmp/runtime-<uid>, which serves pgserver's lock and
        # socket as well. The operator can do nothing about it, so it is not theirs to read.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        from pgserver.postgres_server import PostgresServer, get_server

    # pgserver narrates every pg_ctl call at INFO; its warnings are what an operator needs.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    folder = (data_dir / "postgres").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", folder)

    def start() -> Any:
        # pgserver stops the server when the last process on its list of users lets go, and it takes that
        # list's lock to start one: a dead process left on the list would keep the server running for ever.
        with PostgresServer._lock:
            _forget_dead_users(folder)
            _forget_a_stale_pid_file(folder)
        return get_server(folder)

    server = await asyncio.to_thread(start)
    return EmbeddedPostgres(url=server.get_uri(), stop=partial(asyncio.to_thread, server.cleanup))


def _forget_dead_users(folder: Path) -> None:
    users_file = folder / ".handle_pids.json"
    if not users_file.exists():
        return
    users: list[int] = json.loads(users_file.read_text())
    alive = [pid for pid in users if psutil.pid_exists(pid)]
    if alive != users:
        log.warning(
            "embedded PostgreSQL: taking over from %d process(es) that ended without stopping it",
            len(users) - len(alive),
        )
        users_file.write_text(json.dumps(alive))


def _forget_a_stale_pid_file(folder: Path) -> None:
    """`postmaster.pid` of a server that is gone, its pid now another process's (after a reboot): pgserver
    would take that process for the server and hand out a socket nobody listens on."""
    pid_file = folder / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return
    try:
        server = psutil.Process(pid)
        ours = server.name() == "postgres" and str(folder) in server.cmdline()
    except psutil.NoSuchProcess:  # a zombie too: gone, only not yet reaped
        ours = False
    except psutil.AccessDenied:  # another user's process: perhaps the server, whose pid file must stay
        ours = True
    if not ours:
        log.warning("embedded PostgreSQL: removing the pid file of a server that no longer runs")
        pid_file.unlink(missing_ok=True)


def in_process_redis() -> aioredis.Redis:
    """fakeredis with Lua (`lupa`): the same scripts as on a real Redis. Its pool is a plain object pool, so
    it may be large — the default 100 turns a burst of concurrent scripts into errors."""
    import fakeredis

    redis: aioredis.Redis = fakeredis.FakeAsyncRedis(max_connections=10_000)
    return redis
