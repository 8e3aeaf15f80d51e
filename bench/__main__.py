"""`python -m bench` (or `make bench`): the service under load through its real edges, beside the raw
limits of the same machine, measured in one run. Prints a short table and one JSON line.

Against the real services by default (TEST_*_URL or the local servers); `--embedded` runs the one-process
embedded mode instead. Figures come from here, never from timed assertions in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

from bench.agents import AgentPool
from bench.event_lag import EventLagConsumer
from bench.history import seed_history
from bench.http import HttpClient
from bench.processes import ServiceProcesses
from bench.profiling import Profilers
from bench.raw_limits import RawLimits, measure_raw_limits
from bench.report import summarise, table
from bench.servers import AMQP_URL, DATABASE_URL, REDIS_URL, clean_up, free_ports
from bench.traffic import (
    ACCOUNT_SID,
    BENCH_MENU,
    CHANNELS,
    MAIL_DOMAIN,
    NUMBER,
    PROVIDER_TIMEOUT_S,
    Edges,
    Traffic,
    customer_number,
    drive,
    parse_mix,
)
from bench.twilio_stand_in import TwilioStandIn
from contactcenter.events import outbox
from schema import Channel

# After the load, how long the queue may take to empty (every conversation with an agent) before the run
# reports what still waits: a service far behind its load shows it as `waiting_for_agent_at_end`.
WAIT_OFFERED_S = 300.0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rate", type=float, default=300, help="inbound interactions per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load")
    parser.add_argument(
        "--mix", default="sms=1", help="channel shares, e.g. sms=0.4,voice=0.2,email=0.2,chat=0.2 (email: real SMTP)"
    )
    parser.add_argument("--customers", type=int, default=5000, help="distinct customers (some return)")
    parser.add_argument(
        "--history", type=int, default=0, help="earlier contacts each customer has before the run (card size)"
    )
    parser.add_argument(
        "--database-schema",
        help="run the service on this PostgreSQL schema, already loaded and kept, instead of an empty one of the "
        "run's own: e.g. the million clients of `python -m bench.cards --keep` (their phones are the customers' "
        "numbers, so with --customers up to their count every SMS or call lands on a card with its history). "
        "The run adds its contacts, agents and queue to it and never drops it; conversations an earlier run left "
        "open in it are closed first",
    )
    parser.add_argument(
        "--agents", type=int, default=None, help="simulated agents (default: three times what the rate keeps busy)"
    )
    parser.add_argument("--accept-delay", type=float, default=0.05, help="seconds before an agent accepts")
    parser.add_argument("--hold", type=float, default=0.1, help="seconds an agent keeps a conversation")
    parser.add_argument("--routers", type=int, default=1, help="router processes (production layout)")
    parser.add_argument(
        "--relays",
        type=int,
        default=0,
        help="event relay processes (`--role relay`; the routers then do not relay: CC_ROUTER_RELAYS=false). "
        "0: the routers relay, as a layout without relay processes does",
    )
    parser.add_argument(
        "--apis",
        type=int,
        default=1,
        help="API processes (production layout; the load generator spreads webhooks and agents over them, as a "
        "load balancer would)",
    )
    parser.add_argument("--embedded", action="store_true", help="one embedded process instead")
    parser.add_argument(
        "--no-events",
        action="store_true",
        help="run the service with CC_EVENTS=false (no outbox, relay or webhooks): the comparison the events' "
        "cost is measured against",
    )
    parser.add_argument(
        "--no-lag-consumer",
        action="store_true",
        help="events on and published to the exchange, but no lag consumer bound to it: the ceiling with events "
        "measures the service's outbox and relay, not the bench's integrator sharing the host's cores (the events "
        "then reach no queue). Measure the lag at 300/s, with the consumer",
    )
    parser.add_argument("--skip-raw", action="store_true", help="do not measure the raw limits")
    parser.add_argument("--profile", type=Path, help="write a py-spy flame graph of each process into this folder")
    args = parser.parse_args()
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be above zero")
    if args.routers < 1 or args.apis < 1 or args.relays < 0:
        parser.error("--routers and --apis must be at least 1, --relays at least 0")
    if args.embedded and args.relays:
        parser.error("--embedded runs one process: --relays does not apply")
    if args.no_events and args.no_lag_consumer:
        parser.error("--no-lag-consumer measures events without their consumer: not with --no-events")
    if args.embedded and args.apis > 1:
        parser.error("--embedded runs one process: --apis does not apply")
    if args.customers < 1 or args.history < 0:
        parser.error("--customers must be at least 1 and --history at least 0")
    if args.database_schema is not None:
        if args.embedded or args.history:
            parser.error("--database-schema: the schema is already loaded (not with --embedded nor --history)")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database_schema):
            parser.error(f"--database-schema: {args.database_schema!r} is not a plain schema name")
    try:
        parse_mix(args.mix)
    except ValueError as exc:
        parser.error(f"--mix: {exc}")
    if args.agents is None:
        # Enough that offers do not wait for a free agent below the ceiling (the figures are the service's, not
        # the agents'). At the ceiling the service's answers stretch each agent's round and work queues for
        # agents, as in a busy center: more agents move offers from `complete` to the router (docs/performance.md).
        args.agents = max(20, math.ceil(3 * args.rate * (args.accept_delay + args.hold)))
    return args


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def _admin(http: aiohttp.ClientSession, base_url: str, token: str, agents: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    queue = {"name": "bench", "channels": [channel.value for channel in Channel]}  # a new channel's traffic too
    async with http.post(f"{base_url}/api/v1/queues", json=queue, headers=headers):
        pass
    # The number's menu: a call's webhook answers it, the key 1 chooses the bench's queue.
    async with http.put(f"{base_url}/api/v1/voice/numbers/{NUMBER}", json=BENCH_MENU, headers=headers) as response:
        assert response.status == 200, await response.text()
    tokens = []
    for n in range(agents):
        body = {"name": f"agent {n}", "queues": ["bench"]}
        async with http.post(f"{base_url}/api/v1/agents", json=body, headers=headers) as response:
            tokens.append((await response.json())["token"])
    return tokens


async def _stored(database_url: str, schema: str, sids: list[str]) -> tuple[int, int]:
    """How many acknowledged messages are stored, and how many are stored more than once."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch(
            "SELECT provider_id, count(*) AS n FROM interactions WHERE provider_id = ANY($1::text[]) GROUP BY 1", sids
        )
        return len(rows), sum(row["n"] - 1 for row in rows)
    finally:
        await conn.close()


async def _wait_stored(database_url: str, schema: str, sids: list[str], within: float) -> tuple[int, int]:
    deadline = time.monotonic() + within
    while True:
        stored, duplicated = await _stored(database_url, schema, sids)
        if stored == len(sids) or time.monotonic() > deadline:
            return stored, duplicated
        await asyncio.sleep(0.5)


# What became of the calls, as the service recorded them: connected to an agent, ended after that (completed),
# or abandoned (the caller gave up while waiting; with the stand-in, only a defect makes one).
VOICE_OUTCOMES = """
SELECT count(*) FILTER (WHERE connected_at IS NOT NULL) AS connected,
       count(*) FILTER (WHERE connected_at IS NOT NULL AND rank = 3) AS completed,
       count(*) FILTER (WHERE abandoned) AS abandoned
FROM voice_calls
"""


async def _voice_outcomes(database_url: str, schema: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        row = await conn.fetchrow(VOICE_OUTCOMES)
    finally:
        await conn.close()
    assert row is not None, "an aggregate answers one row"
    return {name: int(row[name]) for name in ("connected", "completed", "abandoned")}


async def _wait_offered(database_url: str, schema: str, within: float) -> int:
    """Wait until no conversation waits for an agent (queued, or offered and not yet accepted); answer how
    many still do when `within` seconds have passed."""
    deadline = time.monotonic() + within
    told = 0.0  # when the progress was last said: a service far behind gets a line every ten seconds
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        while True:
            waiting: int = await conn.fetchval(
                "SELECT count(*) FROM conversations WHERE state = 'open' AND agent_id IS NULL"
            )
            if waiting == 0 or time.monotonic() > deadline:
                return waiting
            if time.monotonic() - told >= 10:
                _progress(
                    f"{waiting} conversations still wait for an agent (giving up in {deadline - time.monotonic():.0f}s)"
                )
                told = time.monotonic()
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def _wait_published(database_url: str, schema: str, within: float) -> tuple[int, int]:
    """Wait until the relay has published every event of the run (the lag consumer then has them all, give or
    take the broker's delivery): how many the outbox holds, and how many are still unpublished at the end."""
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        while True:
            row = await conn.fetchrow(f"SELECT count(*), ({outbox.WAITING}) FROM events")
            assert row is not None  # an aggregate answers one row
            total, unpublished = row[0], row[1]
            if unpublished == 0 or time.monotonic() > deadline:
                await asyncio.sleep(0.5)  # what was just published reaches the consumer
                return int(total), int(unpublished)
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def _prepare_loaded(database_url: str, schema: str) -> int:
    """A kept schema as a run needs it: no conversation an earlier run left waiting (the run waits until none
    waits); answer how many events earlier runs left in its outbox."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema):
            raise SystemExit(f"--database-schema: no schema {schema!r}")
        closed = await conn.execute("UPDATE conversations SET state = 'closed', closed_at = now() WHERE state = 'open'")
        _progress(f"{schema}: {closed.split()[-1]} conversations left open by earlier runs closed")
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    profilers = Profilers(args.profile) if args.profile else None
    raw: RawLimits | None = None
    if not args.skip_raw and not args.embedded:
        _progress("measuring the raw limits of the bus, PostgreSQL and Redis")
        raw = await measure_raw_limits(amqp_url=AMQP_URL, database_url=DATABASE_URL, redis_url=REDIS_URL)

    namespace = f"bench{uuid.uuid4().hex[:8]}"
    events_before = 0  # the events an earlier run left in a kept schema (--database-schema)
    admin_token, twilio_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    # Where the service connects accepted calls: a stand-in of Twilio's REST API, which posts the status
    # callbacks Twilio would for each call it connects (in progress, then completed after the agent's hold).
    stand_in = TwilioStandIn(twilio_token, hold=args.hold)
    await stand_in.start()
    env = {
        "CC_ADMIN_TOKEN": admin_token,
        "CC_TWILIO_AUTH_TOKEN": twilio_token,
        "CC_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "CC_TWILIO_API_BASE": stand_in.base_url,
        # Shared by the API processes: a chat visitor's token is good on any of them.
        "CC_CHAT_SECRET": secrets.token_urlsafe(32),
        "CC_LOG_LEVEL": "WARNING",
        # Every customer and agent of the bench comes from one address, as through a proxy: the per-client
        # bound (256) refused webhooks once a stall of the host had the load generator open more connections.
        "CC_MAX_CONNECTIONS_PER_CLIENT": "100000",
        "CC_EVENTS": "false" if args.no_events else "true",
    }
    if args.embedded:
        data_dir = Path(tempfile.mkdtemp(prefix="cc-bench-"))
        env["CC_DATA_DIR"] = str(data_dir)
        roles = ["all"]
        # The embedded PostgreSQL listens on a Unix socket in its data folder; the bench reads it directly.
        database_url = f"postgresql://postgres:@/postgres?host={(data_dir / 'postgres').resolve()}"
        namespace_schema = "public"
    else:
        env |= {
            "CC_DATABASE_URL": DATABASE_URL,
            "CC_REDIS_URL": REDIS_URL,
            "CC_AMQP_URL": AMQP_URL,
            "CC_NAMESPACE": namespace,
        }
        roles = ["api"] * args.apis + ["router"] * args.routers + ["relay"] * args.relays
        if args.relays:
            env["CC_ROUTER_RELAYS"] = "false"
        database_url = DATABASE_URL
        namespace_schema = args.database_schema or namespace
        env["CC_DATABASE_SCHEMA"] = namespace_schema
        if args.database_schema is None:
            conn = await asyncpg.connect(DATABASE_URL)
            await conn.execute(f'CREATE SCHEMA "{namespace}"')
            await conn.close()
        else:
            events_before = await _prepare_loaded(DATABASE_URL, args.database_schema)

    mail = "email" in parse_mix(args.mix)
    if mail and not args.embedded:
        roles.append("smtp")  # the SMTP intake in a process of its own, as production runs it
    ports = free_ports(len(roles) + 1)
    smtp_port = ports.pop()
    if mail:
        env |= {
            "CC_MAIL_DOMAINS": MAIL_DOMAIN,
            "CC_SMTP_PORT": str(smtp_port),
            "CC_SMTP_CONNECTIONS_PER_CLIENT": "100000",
        }
    service = ServiceProcesses(env, roles, ports)
    base_urls = [f"http://127.0.0.1:{port}" for port in service.public_ports]
    stand_in.service_url = base_urls[0]
    _progress(f"starting the service: {', '.join(roles)}")
    await service.start()
    # The lag of events to an integrator's queue, bound before any work (the embedded mode's bus is in-process:
    # nothing to bind).
    event_lag: dict[str, object] | None = None
    lag = (
        None
        if args.no_events or args.embedded or args.no_lag_consumer
        else EventLagConsumer(AMQP_URL, f"{namespace}.events")
    )
    try:
        if lag is not None:
            await lag.start()
        if args.history:
            _progress(f"writing {args.history} earlier contacts for each of {args.customers} customers")
            numbers = [customer_number(n) for n in range(args.customers)]
            await seed_history(database_url, namespace_schema, numbers, args.history)
        async with aiohttp.ClientSession() as http:
            _progress(f"creating and connecting {args.agents} agents")
            tokens = await _admin(http, base_urls[0], admin_token, args.agents)
        agents = AgentPool(base_urls, tokens, accept_delay=args.accept_delay, hold=args.hold)
        await agents.start()
        webhooks = [HttpClient("127.0.0.1", port, timeout=PROVIDER_TIMEOUT_S) for port in service.public_ports]
        mix: list[tuple[Traffic, float]] = []
        try:
            _progress(f"sending {args.rate}/s for {args.duration}s")
            service.start_sampling({lag.pid: "bench event-lag consumer"} if lag is not None else None)
            if profilers is not None:
                await profilers.start(service.pids, args.duration)
            started = time.perf_counter()
            # Each channel's traffic spread evenly over the API processes.
            mix = [
                (CHANNELS[name](Edges(client, twilio_token, args.customers, smtp_port)), share / len(webhooks))
                for name, share in parse_mix(args.mix).items()
                for client in webhooks
            ]
            traffic = await drive(mix, rate=args.rate, duration=args.duration)
            _progress(f"sent {traffic.sent}; waiting for every acknowledged message to be stored and offered")
            stored, duplicated = await _wait_stored(database_url, namespace_schema, traffic.accepted, within=60)
            waiting = await _wait_offered(database_url, namespace_schema, within=WAIT_OFFERED_S)
            await agents.accepts_done(within=30)
            await asyncio.wait_for(stand_in.settled(), 30)
            calls = await _voice_outcomes(database_url, namespace_schema) if "voice" in parse_mix(args.mix) else None
            if not args.no_events and not args.embedded:
                events = await _wait_published(database_url, namespace_schema, within=60)
                event_lag = (await lag.figures() if lag is not None else {"received": None}) | {
                    "in_outbox": events[0] - events_before,
                    "unpublished_at_end": events[1],
                }
            await service.stop_sampling()
            if profilers is not None:
                _progress(f"flame graphs: {', '.join(str(path) for path in await profilers.finish())}")
            # Until the last contact reached an agent, the queue empty: a service that falls behind stretches
            # this, and its rate falls.
            elapsed = max(agents.figures.last_reached, started + traffic.sending_s) - started
        finally:
            for source, _ in mix:
                source.close()
            for client in webhooks:
                client.close()
            await agents.stop()
    finally:
        if lag is not None:
            await lag.close()
        await stand_in.stop()
        await service.stop()
        if args.embedded:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            await clean_up(namespace)

    return summarise(
        args,
        traffic=traffic,
        agents=agents.figures,
        service=service,
        raw=raw,
        elapsed=elapsed,
        stored=stored,
        duplicated=duplicated,
        waiting=waiting,
        calls=stand_in.figures,
        call_outcomes=calls,
        event_lag=event_lag,
    )


def main() -> None:
    arguments = _arguments()
    try:
        import uvloop  # the load generator's own cost comes out of the two cores the service runs on
    except ImportError:
        result = asyncio.run(run(arguments))
    else:
        result = uvloop.run(run(arguments))
    print(table(result))
    print(json.dumps(result))


# Imported too (bench.chat takes its service helpers from here): run only as `python -m bench`.
if __name__ == "__main__":
    main()
