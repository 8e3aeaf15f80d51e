"""`contactcenter serve [--role api|router|smtp|relay|all]`, `contactcenter migrate`, `contactcenter demo` (load the
demo center), `contactcenter simulate` (traffic for it)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import secrets
import sys
import time
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr, ValidationError

from contactcenter.answers import SERVICE_ERRORS
from contactcenter.errors import Unavailable
from contactcenter.host.app import CHANNELS, SERVICES, Role, create_app
from contactcenter.host.connections import guarded_runner, guarded_site
from contactcenter.host.demo import describe, keep_people, load_demo, read_people
from contactcenter.host.services import Services, open_services
from contactcenter.host.simulate import simulate
from contactcenter.logs import choose_format, configure_logging
from contactcenter.settings import Settings
from contactcenter.store import open_pool
from contactcenter.store.migrate import migrate

log = logging.getLogger("contactcenter")

# What a service that does not answer yet raises while the start-up opens it: refused or cut connections too.
START_OUTAGES: tuple[type[BaseException], ...] = (Unavailable, OSError, *SERVICE_ERRORS)
FIRST_START_PAUSE, LAST_START_PAUSE = 0.5, 5.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contactcenter", description="Omnichannel contact-center backend.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--role", choices=[role.value for role in Role], default=Role.ALL.value)
    commands.add_parser("migrate", help="apply database migrations and exit")
    commands.add_parser("demo", help="load the demo center (a car dealership) into the database and exit")
    simulate = commands.add_parser("simulate", help="send the running demo center realistic traffic")
    simulate.add_argument("--url", help="the service's address (default: http://CC_HTTP_HOST:CC_HTTP_PORT)")
    simulate.add_argument("--per-minute", type=float, default=20.0, help="contacts per minute (default 20)")
    simulate.add_argument("--duration", type=float, default=600.0, help="seconds to run (default 600)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        # Name the variable, not pydantic's model: the operator set CC_..., not `Settings.webhook_concurrency`.
        problems = "; ".join(f"CC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        sys.exit(f"contactcenter: bad configuration: {problems}")
    if problem := _channel_setting_problem(settings):
        sys.exit(f"contactcenter: bad configuration: {problem}")
    configure_logging(
        choose_format(settings.log_format, embedded=settings.embedded, stream=sys.stderr), settings.log_level
    )
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "demo":
        asyncio.run(_demo(settings))
    elif args.command == "simulate":
        asyncio.run(_simulate(settings, args.url, args.per_minute, args.duration))
    else:
        serve(settings, Role(args.role))


def _channel_setting_problem(settings: Settings) -> str | None:
    """A channel's setting whose grammar is the channel's own (settings may not import channels): each channel
    reads its own here, so a bad one stops the command as the others do, not once the services are open."""
    return next((problem for channel in CHANNELS if (problem := channel.settings_problem(settings))), None)


# Connections the kernel holds for us until we accept them. aiohttp's default (128) overflowed under a burst
# of webhooks (providers open a connection per request): the kernel then drops the handshake and the client
# waits 1, 2, 4 … s to try again, where an accepted connection gets an answer — or a quick 503 — at once.
LISTEN_BACKLOG = 1024


def serve(settings: Settings, role: Role) -> None:
    if role is not Role.ALL and None in (settings.database_url, settings.redis_url, settings.amqp_url):
        sys.exit("roles run apart only on shared services: set CC_DATABASE_URL, CC_REDIS_URL and CC_AMQP_URL")
    if settings.admin_token is None and settings.embedded:
        token = secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"admin_token": SecretStr(token)})
        # Shown once so a newcomer can use the API; production sets CC_ADMIN_TOKEN.
        print(f"CC_ADMIN_TOKEN was not set; this run's admin token: {token}", flush=True)
    if role not in (Role.ROUTER, Role.RELAY) and not settings.twilio_auth_token.get_secret_value():
        log.warning("CC_TWILIO_AUTH_TOKEN is not set: every Twilio webhook will be refused (403)")
    loop = _event_loop()
    asyncio.set_event_loop(loop)
    serving = loop.create_task(_serve(settings, role))
    try:
        loop.run_until_complete(serving)
    except (web.GracefulExit, KeyboardInterrupt):
        pass  # SIGTERM or SIGINT: a graceful shutdown
    finally:
        serving.cancel()
        loop.run_until_complete(asyncio.gather(serving, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(settings: Settings, role: Role) -> None:
    """Serve until cancelled, through the guarded site (`web.run_app` would listen unguarded)."""
    runner = await _started(settings, role)
    try:
        site = guarded_site(runner, settings, settings.http_host, settings.http_port, backlog=LISTEN_BACKLOG)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"  # the port it listens on, even when 0 was asked
        if settings.embedded and settings.demo_on_first_start and role is Role.ALL:
            await _demo_on_first_start(settings, runner.app[SERVICES], base)
        _announce_ready(base, settings, role)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _started(settings: Settings, role: Role) -> web.AppRunner:
    """The app set up — its start-up contexts open the services. One that does not answer yet (compose starts
    everything at once; a broker restarts, a database fails over) is waited for: the start is undone and tried
    again from scratch, until `start_timeout_seconds` have passed."""
    deadline = time.monotonic() + settings.start_timeout_seconds
    pause = FIRST_START_PAUSE
    while True:
        app = create_app(settings, role)
        app.on_startup.append(_tune_the_garbage_collector)
        runner = guarded_runner(app, settings, handle_signals=True)
        try:
            await runner.setup()
            return runner
        except START_OUTAGES as exc:
            await runner.cleanup()
            if time.monotonic() + pause > deadline:
                raise
            log.warning(
                "a service did not answer at start-up (%s): waiting for it, starting again in %.1f s",
                type(exc).__name__,
                pause,
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, LAST_START_PAUSE)


def _announce_ready(base: str, settings: Settings, role: Role) -> None:
    """Said once the services are open and the socket listens: /readyz answers from now on."""
    mode = "embedded" if settings.embedded else "production"
    print(
        f"contactcenter ready on {base} ({mode}, role {role.value}): health {base}/healthz, "
        f"readiness {base}/readyz, Twilio SMS webhook {base}/channels/twilio/sms, "
        f"agents {base}/api/v1/agents/ws, wallboard {base}/supervisor, agent console {base}/agent "
        "(demo data: contactcenter demo, then contactcenter simulate)",
        flush=True,
    )


# Allocations between collections of the youngest generation (CPython's default: 700), and how many of those
# (then of the middle one) before an older one. Almost everything a contact allocates is freed by reference
# counting as soon as it is done; at 700 the collector ran often under load, and found little. Less CPU under
# load, the same memory: docs/performance.md, "Figures behind choices in the code".
GC_THRESHOLDS = (20_000, 50, 100)


async def _tune_the_garbage_collector(app: web.Application) -> None:
    """Modules, models and connections made at start-up live as long as the process: kept out of the garbage
    collector's view, its full collections (stalls under load, each a spike in the latency of every contact
    in flight) scan only what came since. And it runs less often (`GC_THRESHOLDS`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _migrate(settings: Settings) -> None:
    if settings.database_url is None:
        sys.exit("set CC_DATABASE_URL (embedded mode migrates by itself when it starts)")
    pool = await open_pool(settings.database_url.get_secret_value(), schema=settings.database_schema)
    try:
        applied = await migrate(pool)
        print(f"applied: {', '.join(applied) or 'nothing, the database is up to date'}")
    finally:
        await pool.close()


def _base_url(settings: Settings) -> str:
    return f"http://{settings.http_host}:{settings.http_port}"


async def _demo(settings: Settings) -> None:
    known = read_people(Path(settings.data_dir))
    async with open_services(settings) as services:
        people = await load_demo(services.pool, services.directory, known)
    keep_people(Path(settings.data_dir), people)
    print(describe(people, _base_url(settings)), flush=True)


async def _demo_on_first_start(settings: Settings, services: Services, base: str) -> None:
    """An empty database gets the demo center; one loaded by an earlier start is described again."""
    known = read_people(Path(settings.data_dir))
    if not await services.directory.queues():
        known = await load_demo(services.pool, services.directory, None)
        keep_people(Path(settings.data_dir), known)
    if known is not None:
        print(describe(known, base), flush=True)


async def _simulate(settings: Settings, url: str | None, per_minute: float, duration: float) -> None:
    people = read_people(Path(settings.data_dir))
    if people is None:
        sys.exit("no demo center here: run `contactcenter demo` first (with the same CC_DATA_DIR)")
    if per_minute <= 0 or duration <= 0:
        sys.exit("--per-minute and --duration must be positive")
    counted = await simulate(
        url or _base_url(settings), settings, people, per_minute=per_minute, duration_seconds=duration
    )
    print(f"simulated: {counted}", flush=True)


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it installs (Linux, macOS): the same asyncio, with a cheaper loop and socket layer."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
