"""`python -m bench.relay_drain`: the event relay alone, on the real PostgreSQL and RabbitMQ, without the rest of
the service — what it costs per event and how fast it goes, to compare relay changes A/B in minutes.

Two measures, in a schema and exchange of its own (dropped afterwards):
- `--backlog N`: N contacts' worth of events (eleven each, as a routed, answered and completed SMS makes) are in
  the outbox before the relay starts; it publishes them all. Prints the events per second, and the CPU per event
  of this process (the relay alone: nothing else runs here meanwhile), of the relay's PostgreSQL backends and
  of RabbitMQ (the machine's `beam.smp`, shared with whatever else runs: read it as an upper bound).
- `--rate R --seconds S`: contacts written at R a second by a process of their own (each one transaction of
  eleven events, as the changes write them) while the relay runs: the relay's CPU per event, and the lag from
  each event's `time` to a consumer of the exchange in a process of its own (`bench.event_lag`).

One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid

import asyncpg
import psutil
import redis.asyncio as aioredis

from bench.event_lag import EventLagConsumer
from contactcenter.bus.amqp import connect_amqp
from contactcenter.events import outbox
from contactcenter.events.relay import EventRelay
from contactcenter.events.stream import LiveEventStream
from contactcenter.store import open_pool
from contactcenter.store.migrate import migrate

DATABASE_URL = os.environ.get("CC_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CC_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("CC_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

# A contact's events in the order the service writes them, each with its order key's kind.
CONTACT = (
    ("interaction.received", "interaction"),
    ("client.created", "client"),
    ("identity.added", "client"),
    ("conversation.opened", "conversation"),
    ("interaction.routed", "interaction"),
    ("reservation.created", "reservation"),
    ("interaction.offered", "interaction"),
    ("reservation.accepted", "reservation"),
    ("interaction.answered", "interaction"),
    ("interaction.completed", "interaction"),
    ("conversation.closed", "conversation"),
)
INSERT = """
INSERT INTO events (type, subject, partition_key, data)
SELECT t, s, p, d::jsonb FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS e(t, s, p, d)
"""


def _contact() -> tuple[list[str], list[str], list[str], list[str]]:
    ids = {kind: str(uuid.uuid4()) for kind in ("interaction", "client", "conversation", "reservation")}
    data = json.dumps(
        {
            "interaction_id": ids["interaction"],
            "conversation_id": ids["conversation"],
            "client_id": ids["client"],
            "channel": "sms",
            "direction": "inbound",
            "received_at": "2026-11-30T13:14:56.498Z",
        }
    )
    types = [kind for kind, _ in CONTACT]
    subjects = [ids[entity] for _, entity in CONTACT]
    keys = [f"{entity}:{ids[entity]}" for _, entity in CONTACT]
    return types, subjects, keys, [data] * len(CONTACT)


async def _write_contacts(conn: asyncpg.Connection, contacts: int) -> None:
    columns: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
    for _ in range(contacts):
        for column, values in zip(columns, _contact(), strict=True):
            column.extend(values)
    await conn.execute(INSERT, *columns)


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _broker_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"]


async def _backend_pids(admin: asyncpg.Connection, schema: str) -> list[int]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1", f"contactcenter:{schema}")
    return [row["pid"] for row in rows]


async def _published(conn: asyncpg.Connection) -> None:
    async with asyncio.timeout(120):
        while True:
            if not await outbox.waiting(conn):
                return
            await asyncio.sleep(0.05)


async def run(args: argparse.Namespace) -> dict[str, object]:
    namespace = f"rd{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(DATABASE_URL)
    await admin.execute(f'CREATE SCHEMA "{namespace}"')
    redis = aioredis.from_url(REDIS_URL)
    lag = EventLagConsumer(AMQP_URL, f"{namespace}.events")
    try:
        pool = await open_pool(DATABASE_URL, schema=namespace, min_size=2, max_size=4)
        await migrate(pool)
        writer = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": namespace})
        bus = await connect_amqp(AMQP_URL, publish_timeout=30.0)
        await lag.start()
        relay = EventRelay(
            pool,
            bus,
            f"{namespace}.events",
            LiveEventStream(redis, namespace),
            schema=namespace,
            sweep_seconds=1.0,
            batch=args.batch,
            linger_seconds=args.linger,
        )
        figures: dict[str, object] = {"batch": args.batch, "linger_s": args.linger}
        try:
            if args.backlog:
                for start in range(0, args.backlog, 1000):
                    await _write_contacts(writer, min(1000, args.backlog - start))
                events = args.backlog * len(CONTACT)
                brokers = _broker_pids()
                # The pool's backends ran the migrations: count only what they spend from here on.
                backends = {pid: _cpu_seconds([pid]) for pid in await _backend_pids(admin, namespace)}
                began, own, broker = time.perf_counter(), time.process_time(), _cpu_seconds(brokers)
                relay.start()
                # Watched on the writer's connection, not the pool's: its backend is not counted.
                while await outbox.waiting(writer):
                    for pid in await _backend_pids(admin, namespace):
                        backends.setdefault(pid, 0.0)
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - began
                own_s, broker_s = time.process_time() - own, _cpu_seconds(brokers) - broker
                backends_s = sum(_cpu_seconds([pid]) - start for pid, start in backends.items())
                figures |= {
                    "events": events,
                    "events_per_s": round(events / elapsed),
                    "relay_cpu_us_per_event": round(1e6 * own_s / events, 1),
                    "relay_backends_cpu_us_per_event_total": round(1e6 * backends_s / events, 1),
                    "rabbitmq_cpu_us_per_event": round(1e6 * broker_s / events, 1),
                }
            else:
                relay.start()
                own = time.process_time()
                # The changes come from a process of their own: this one's CPU is then the relay's.
                changes = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.relay_drain",
                    "--write-into",
                    namespace,
                    "--rate",
                    str(args.rate),
                    "--seconds",
                    str(args.seconds),
                    stdout=asyncio.subprocess.PIPE,
                )
                output, _ = await changes.communicate()
                written = int(output)
                await _published(writer)
                own_s = time.process_time() - own
                await asyncio.sleep(0.5)
                figures |= {
                    "contacts": written,
                    "rate": args.rate,
                    "seconds": args.seconds,
                    "relay_cpu_us_per_event": round(1e6 * own_s / (written * len(CONTACT)), 1),
                }
        finally:
            await relay.stop()
            figures["lag_ms"] = await lag.figures()
            await bus.close()
            await writer.close()
            await pool.close()
    finally:
        await lag.close()
        await redis.delete(f"{namespace}:events")
        await redis.aclose()
        await admin.execute(f'DROP SCHEMA "{namespace}" CASCADE')
        await admin.close()
        await _delete_exchange(f"{namespace}.events")
    return figures


async def _delete_exchange(name: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.exchange_delete(name)
    finally:
        await connection.close()


async def write_changes(schema: str, rate: float, seconds: float) -> int:
    """Contacts' events at `rate` a second, each contact one transaction; how many contacts."""
    writer = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": schema})
    try:
        began = time.perf_counter()
        written = 0
        while (elapsed := time.perf_counter() - began) < seconds:
            due = int(elapsed * rate) - written
            for _ in range(due):
                await _write_contacts(writer, 1)
            written += due
            await asyncio.sleep(0.005)
        return written
    finally:
        await writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_drain", description=__doc__)
    parser.add_argument("--backlog", type=int, default=0, help="contacts' events in the outbox before the relay starts")
    parser.add_argument("--rate", type=float, default=300.0, help="contacts a second written while the relay runs")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--linger", type=float, default=0.05)
    parser.add_argument("--write-into", help=argparse.SUPPRESS)  # the paced run's process of changes
    args = parser.parse_args()
    import uvloop  # as the service runs (contactcenter/host/cli.py)

    if args.write_into:
        print(uvloop.run(write_changes(args.write_into, args.rate, args.seconds)), flush=True)
        return
    print(json.dumps(uvloop.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
