"""Embedded defaults for a newcomer's machine: a real PostgreSQL from `pgserver` (data under `./var/`),
an in-process Redis (`fakeredis` running the same Lua scripts), the in-process bus."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis

log = logging.getLogger(__name__)


async def start_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL and return its URL (a Unix socket under `data_dir`)."""
    from pgserver import get_server  # type: ignore[attr-defined]

    # pgserver narrates every pg_ctl call at INFO; its warnings are what an operator needs.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    folder = (data_dir / "postgres").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", folder)
    server = await asyncio.to_thread(get_server, folder)
    uri: str = server.get_uri()
    return uri


def in_process_redis() -> aioredis.Redis:
    """fakeredis with Lua (`lupa`): the same scripts as on a real Redis. Its pool is a plain object pool, so
    it may be large — the default 100 turns a burst of concurrent scripts into errors."""
    import fakeredis

    redis: aioredis.Redis = fakeredis.FakeAsyncRedis(max_connections=10_000)
    return redis
