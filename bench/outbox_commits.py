"""`python -m bench.outbox_commits`: how many event-writing transactions PostgreSQL commits a second, the outbox
notifying the relay at each commit or not (migration 037's switch, `events_relay.notify`), alternated in one
sitting on a schema of its own (dropped afterwards).

A transaction that sent a NOTIFY takes, at its commit, a lock that every other notifying transaction of the
cluster waits for, held until its commit is flushed: with a notification per change, concurrent changes are
flushed one after the other instead of together. `--writers` connections each commit, in a loop, one insert of
`--events` events (as a change writes them) for `--seconds`, first with the switch on, then off, `--rounds`
times. One JSON line on stdout: commits a second per round, each way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid

import asyncpg

from contactcenter.store import open_pool
from contactcenter.store.migrate import migrate

DATABASE_URL = os.environ.get("CC_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
INSERT = """
INSERT INTO events (type, subject, partition_key, data)
SELECT 'client.created', 'bench', 'client:bench', '{}'::jsonb FROM generate_series(1, $1)
"""


async def _commits_per_second(pool: asyncpg.Pool, writers: int, events: int, seconds: float) -> float:
    committed = 0
    stop = time.monotonic() + seconds

    async def write() -> None:
        nonlocal committed
        async with pool.acquire() as conn:
            while time.monotonic() < stop:
                await conn.execute(INSERT, events)
                committed += 1

    await asyncio.gather(*(write() for _ in range(writers)))
    return committed / seconds


async def run(args: argparse.Namespace) -> dict[str, object]:
    schema = f"bench_commits_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(DATABASE_URL)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    pool = await open_pool(DATABASE_URL, schema=schema, min_size=2, max_size=args.writers + 2)
    try:
        await migrate(pool)
        figures: dict[str, list[float]] = {"notifying": [], "not_notifying": []}
        for _ in range(args.rounds):
            for notify, name in ((True, "notifying"), (False, "not_notifying")):
                await pool.execute("UPDATE events_relay SET notify = $1", notify)
                rate = await _commits_per_second(pool, args.writers, args.events, args.seconds)
                figures[name].append(round(rate, 1))
        return {"benchmark": "outbox_commits", "writers": args.writers, "events_per_commit": args.events} | {
            f"commits_per_s_{name}": rates for name, rates in figures.items()
        }
    finally:
        await pool.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox_commits", description=__doc__)
    parser.add_argument("--writers", type=int, default=8, help="concurrent connections writing events")
    parser.add_argument("--events", type=int, default=4, help="events per transaction")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per measure")
    parser.add_argument("--rounds", type=int, default=4, help="measures each way, alternated")
    args = parser.parse_args()
    if args.writers < 1 or args.events < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--writers, --events and --rounds must be at least 1, --seconds above zero")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
