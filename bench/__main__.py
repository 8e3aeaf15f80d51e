"""`python -m bench` (or `make bench`): the service under load through its real edges, beside the raw
limits of the same machine, measured in one run. Prints a short table and one JSON line.

Against the real services by default (TEST_*_URL or the local servers); `--embedded` runs the one-process
embedded mode instead. Figures come from here, never from timed assertions in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg

from bench.agents import AgentPool
from bench.history import seed_history
from bench.http import HttpClient
from bench.processes import ServiceProcesses
from bench.profiling import Profilers
from bench.raw_limits import RawLimits, measure_raw_limits
from bench.traffic import CHANNELS, PROVIDER_TIMEOUT_S, customer_number, drive, parse_mix

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rate", type=float, default=300, help="inbound interactions per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load")
    parser.add_argument("--mix", default="sms=1", help="channel shares, e.g. sms=1 (more as channels land)")
    parser.add_argument("--customers", type=int, default=5000, help="distinct customers (some return)")
    parser.add_argument(
        "--history", type=int, default=0, help="earlier contacts each customer has before the run (card size)"
    )
    parser.add_argument(
        "--agents", type=int, default=None, help="simulated agents (default: three times what the rate keeps busy)"
    )
    parser.add_argument("--accept-delay", type=float, default=0.05, help="seconds before an agent accepts")
    parser.add_argument("--hold", type=float, default=0.1, help="seconds an agent keeps a conversation")
    parser.add_argument("--routers", type=int, default=1, help="router processes (production layout)")
    parser.add_argument(
        "--apis",
        type=int,
        default=1,
        help="API processes (production layout; the load generator spreads webhooks and agents over them, as a "
        "load balancer would)",
    )
    parser.add_argument("--embedded", action="store_true", help="one embedded process instead")
    parser.add_argument("--skip-raw", action="store_true", help="do not measure the raw limits")
    parser.add_argument("--profile", type=Path, help="write a py-spy flame graph of each process into this folder")
    args = parser.parse_args()
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be above zero")
    if args.routers < 1 or args.apis < 1:
        parser.error("--routers and --apis must be at least 1")
    if args.embedded and args.apis > 1:
        parser.error("--embedded runs one process: --apis does not apply")
    if args.customers < 1 or args.history < 0:
        parser.error("--customers must be at least 1 and --history at least 0")
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


def _free_ports(count: int) -> list[int]:
    """Ports free now, one per process (all probed at once, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _p99_by_window(arrivals: list[float], latencies: list[float], windows: int = 10) -> list[float]:
    """p99 of the offers that arrived in each tenth of the run: a long run that slows down shows it here."""
    if not arrivals:
        return []
    first, last = min(arrivals), max(arrivals)
    width = (last - first) / windows or 1.0
    split: list[list[float]] = [[] for _ in range(windows)]
    for arrived, latency in zip(arrivals, latencies, strict=True):
        split[min(windows - 1, int((arrived - first) / width))].append(latency)
    return [round(_percentile(part, 0.99), 1) for part in split]


async def _admin(http: aiohttp.ClientSession, base_url: str, token: str, agents: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{base_url}/api/v1/queues", json={"name": "bench", "channels": ["sms"]}, headers=headers):
        pass
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


async def _clean_up(namespace: str) -> None:
    """Leave the shared servers as they were: the run's schema, queues, exchanges and Redis keys go."""
    import aio_pika
    import redis.asyncio as aioredis

    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
    await conn.close()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        for queue in ("router", "dead-letters"):
            channel = await connection.channel()
            await channel.queue_delete(f"{namespace}.{queue}", if_unused=False, if_empty=False)
        for exchange in ("interactions", "dead"):
            channel = await connection.channel()
            await channel.exchange_delete(f"{namespace}.{exchange}")
    finally:
        await connection.close()
    client = aioredis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.delete(*keys[start : start + 1000])
    await client.aclose()


async def run(args: argparse.Namespace) -> dict[str, object]:
    profilers = Profilers(args.profile) if args.profile else None
    raw: RawLimits | None = None
    if not args.skip_raw and not args.embedded:
        _progress("measuring the raw limits of the bus, PostgreSQL and Redis")
        raw = await measure_raw_limits(amqp_url=AMQP_URL, database_url=DATABASE_URL, redis_url=REDIS_URL)

    namespace = f"bench{uuid.uuid4().hex[:8]}"
    admin_token, twilio_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    env = {"CC_ADMIN_TOKEN": admin_token, "CC_TWILIO_AUTH_TOKEN": twilio_token, "CC_LOG_LEVEL": "WARNING"}
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
            "CC_DATABASE_SCHEMA": namespace,
        }
        roles = ["api"] * args.apis + ["router"] * args.routers
        database_url = DATABASE_URL
        namespace_schema = namespace
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f'CREATE SCHEMA "{namespace}"')
        await conn.close()

    service = ServiceProcesses(env, roles, _free_ports(len(roles)))
    base_urls = [f"http://127.0.0.1:{port}" for port in service.public_ports]
    _progress(f"starting the service: {', '.join(roles)}")
    await service.start()
    try:
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
        try:
            _progress(f"sending {args.rate}/s for {args.duration}s")
            service.start_sampling()
            if profilers is not None:
                await profilers.start(service.pids, args.duration)
            started = time.perf_counter()
            # Each channel's traffic spread evenly over the API processes.
            mix = [
                (CHANNELS[name](client, twilio_token, args.customers), share / len(webhooks))
                for name, share in parse_mix(args.mix).items()
                for client in webhooks
            ]
            traffic = await drive(mix, rate=args.rate, duration=args.duration)
            _progress(f"sent {traffic.sent}; waiting for every acknowledged message to be stored and offered")
            stored, duplicated = await _wait_stored(database_url, namespace_schema, traffic.accepted, within=60)
            await asyncio.sleep(max(args.accept_delay + args.hold, 0.5) * 2)
            await service.stop_sampling()
            if profilers is not None:
                _progress(f"flame graphs: {', '.join(str(path) for path in await profilers.finish())}")
            # Until the last acknowledged contact reached an agent: a service that falls behind stretches this, and
            # its rate falls. (A contact the service took in after its provider gave up is not counted here.)
            reached = [agents.figures.delivered[sid] for sid in traffic.accepted if sid in agents.figures.delivered]
            elapsed = max([*reached, started + traffic.sending_s]) - started
        finally:
            for client in webhooks:
                client.close()
            await agents.stop()
    finally:
        await service.stop()
        if args.embedded:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            await _clean_up(namespace)

    figures = agents.figures
    latencies = figures.arrival_to_offer_ms
    achieved = len(traffic.accepted) / elapsed
    result: dict[str, object] = {
        "benchmark": "end_to_end",
        "mix": parse_mix(args.mix),
        "customers": args.customers,
        "history_per_customer": args.history,
        "mode": "embedded" if args.embedded else f"production ({args.routers} router(s))",
        "offered_rate_per_s": args.rate,
        "duration_s": round(elapsed, 2),
        "sent": traffic.sent,
        "sending_rate_per_s": round(traffic.sent / traffic.sending_s, 1) if traffic.sending_s else None,
        "acknowledged": len(traffic.accepted),
        "statuses": dict(traffic.statuses),
        "client_failures": dict(traffic.failures),
        "sustained_interactions_per_s": round(achieved, 1),
        "offers": len(figures.offers),
        "card_timeline_entries_mean": round(figures.card_entries / len(figures.offers), 1) if figures.offers else None,
        "messages_to_agents": figures.messages,
        # Agents' sockets the service closed during the run (each reconnected), and errors answered to them.
        "agent_sockets_dropped": figures.dropped,
        "agent_errors": dict(Counter(figures.errors).most_common(5)),
        "arrival_to_offer_ms": {
            "p50": round(_percentile(latencies, 0.50), 2),
            "p95": round(_percentile(latencies, 0.95), 2),
            "p99": round(_percentile(latencies, 0.99), 2),
            "mean": round(statistics.fmean(latencies), 2) if latencies else None,
        },
        "arrival_to_offer_p99_ms_by_tenth": _p99_by_window(figures.arrivals, latencies),
        "lost": len(traffic.accepted) - stored,
        "duplicated": duplicated + sum(n - 1 for n in figures.offers.values()),
        "processes": [
            {
                "role": p.role,
                "cpu_percent": round(p.cpu_percent, 1),
                "peak_rss_mb": round(p.peak_rss_mb, 1),
                "rss_growth_after_warmup_pct": p.growth_after_warmup_pct(),
                "system_calls_per_interaction": round(p.system_calls / len(traffic.accepted), 1)
                if traffic.accepted
                else None,
            }
            for p in service.figures
        ],
        "machine_cpu_percent": service.machine_cpu_percent,
        # The whole machine's CPU (service, servers, load generator) per contact carried: two cores carry at
        # best 2,000 / this many contacts a second.
        "machine_cpu_ms_per_interaction": round(1000 * service.machine_cpu_seconds / len(traffic.accepted), 2)
        if traffic.accepted
        else None,
        # Sleeps and wake-ups (all threads) per contact carried, per group: the cost model of docs/performance.md.
        "context_switches_per_interaction": {
            group: round(switches / len(traffic.accepted), 1)
            for group, switches in service.machine_context_switches.items()
        }
        if traffic.accepted
        else {},
    }
    if raw is None:
        # Said, not left out silently: a reader of the figures must know there is no ratio, and why.
        result["raw_not_measured"] = (
            "the embedded mode's bus is in-process: no broker to measure (run without --embedded for the ratio)"
            if args.embedded
            else "--skip-raw"
        )
    else:
        measured = raw.by_operation()
        result["raw"] = {f"{operation}_per_s": round(figure.per_s, 1) for operation, figure in measured.items()}
        result["ratio_to_raw_bus_publish"] = round(achieved / raw.bus_publish.per_s, 3)
        result["raw_machine_cpu_us_per_operation"] = {
            operation: round(figure.machine_cpu_us) for operation, figure in measured.items()
        }
        # What the cores could carry if a contact were nothing but its crossing of the bus, as the raw test
        # makes it: the ceiling on this machine for code sending one message per contact and crossing (ours
        # lets contacts that arrive together share one).
        result["bus_bound_per_s"] = round(raw.bus_bound_per_s(), 1)
        result["ratio_to_bus_bound"] = round(achieved / raw.bus_bound_per_s(), 3)
    return result


def _table(result: dict[str, object]) -> str:
    latency = result["arrival_to_offer_ms"]
    assert isinstance(latency, dict)
    lines = [
        f"mode                 {result['mode']}",
        f"sustained            {result['sustained_interactions_per_s']} interactions/s"
        f" (offered {result['offered_rate_per_s']})",
        f"arrival -> offer     p50 {latency['p50']} ms  p95 {latency['p95']} ms  p99 {latency['p99']} ms",
        f"p99 by tenth of run  {result['arrival_to_offer_p99_ms_by_tenth']}",
        f"lost / duplicated    {result['lost']} / {result['duplicated']}",
        f"agents               {result['agent_sockets_dropped']} sockets dropped, errors {result['agent_errors']}",
    ]
    if "raw" in result:
        lines.append(f"raw limits           {result['raw']}")
        lines.append(f"raw machine cpu (µs) {result['raw_machine_cpu_us_per_operation']}")
        lines.append(f"ratio to raw bus     {result['ratio_to_raw_bus_publish']}")
        lines.append(
            f"bus-only bound       {result['bus_bound_per_s']} interactions/s"
            f" (one crossing each); ratio {result['ratio_to_bus_bound']}"
        )
    else:
        lines.append(f"raw limits           not measured: {result['raw_not_measured']}")
    for process in result["processes"]:  # type: ignore[attr-defined]
        lines.append(
            f"process {process['role']:<12} cpu {process['cpu_percent']}%  peak {process['peak_rss_mb']} MiB"
            f"  system calls per interaction {process['system_calls_per_interaction']}"
        )
    machine = result["machine_cpu_percent"]
    assert isinstance(machine, dict)
    lines.append("machine cpu          " + ", ".join(f"{group} {cpu}%" for group, cpu in machine.items()))
    lines.append(f"machine cpu per interaction {result['machine_cpu_ms_per_interaction']} ms")
    switches = result["context_switches_per_interaction"]
    assert isinstance(switches, dict)
    lines.append("context switches per interaction " + ", ".join(f"{g} {n}" for g, n in switches.items()))
    return "\n".join(lines)


def main() -> None:
    arguments = _arguments()
    try:
        import uvloop  # the load generator's own cost comes out of the two cores the service runs on
    except ImportError:
        result = asyncio.run(run(arguments))
    else:
        result = uvloop.run(run(arguments))
    print(_table(result))
    print(json.dumps(result))


main()
