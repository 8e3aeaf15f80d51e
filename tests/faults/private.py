"""Private PostgreSQL, Redis and RabbitMQ instances a fault test may stop, restart and flush: each on free
ports in a temp dir of its own, torn down after. The shared servers on the default ports serve other
engineers' tests at the same time and are never faulted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from bench.ports import free_port

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
BOOT_SECONDS = 90.0


async def wait_for_port(port: int, what: str, seconds: float = BOOT_SECONDS) -> None:
    async with asyncio.timeout(seconds):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return


async def wait_for_closed(port: int, seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return
            writer.close()
            await asyncio.sleep(0.1)


async def run(*command: str, env: dict[str, str] | None = None, seconds: float = 60.0) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(seconds):
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {process.returncode}: {text[-2000:]}")
    return text


class PrivateRedis:
    """`redis-server` without persistence: a restart loses everything, as the one in production may."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
        )
        await wait_for_port(self.port, "redis")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


class PrivatePostgres:
    """A PostgreSQL 15 cluster in a temp dir (run as `postgres` when we are root: initdb refuses root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="cc-fault-pg-"))
        self._data = self._dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, *command: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)

    async def start(self) -> None:
        if not self._data.exists():
            if os.geteuid() == 0:
                shutil.chown(self._dir, "postgres", "postgres")
            await run(
                *self._as_owner(str(POSTGRES_BIN / "initdb"), "-D", str(self._data), "-A", "trust", "-U", "postgres")
            )
        await self._pg_ctl("start", "-w", "-l", str(self._dir / "log"))

    async def restart(self, *, down_seconds: float = 0.0) -> None:
        """A fast shutdown (every session is ended, as an operator's restart does), `down_seconds` without a
        server, and a start."""
        await self._pg_ctl("stop", "-m", "fast", "-w")
        await asyncio.sleep(down_seconds)
        await self._pg_ctl("start", "-w", "-l", str(self._dir / "log"))

    async def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self._pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _pg_ctl(self, *arguments: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._dir} -c fsync=off"
        await run(*self._as_owner(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self._data), "-o", options, *arguments))


class PrivateRabbitMQ:
    """A second RabbitMQ node beside the shared one: its own name, ports, data and cookie, no plugins."""

    def __init__(self) -> None:
        self.port = free_port()
        self.node = f"rabbit_fault_{self.port}@localhost"
        self._dir = Path(tempfile.mkdtemp(prefix="cc-fault-rabbit-"))
        self._process: asyncio.subprocess.Process | None = None
        (self._dir / "plugins").write_text("[].\n")
        # Only loopback, IPv4: a listener on `::` is not always let go by `stop_app` before `start_app` wants it.
        (self._dir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n")
        self._env = {
            **os.environ,
            "HOME": str(self._dir),  # the Erlang cookie: the server and rabbitmqctl read the same one
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self._dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self._dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._dir / "plugins"),
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            str(RABBITMQ_BIN / "rabbitmq-server"),
            env=self._env,
            cwd=self._dir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await wait_for_port(self.port, "rabbitmq")

    async def stop_app(self) -> None:
        await self._ctl("stop_app")
        await wait_for_closed(self.port)

    async def start_app(self) -> None:
        await self._ctl("start_app")
        await wait_for_port(self.port, "rabbitmq")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            try:
                await self._ctl("stop")
            except (RuntimeError, TimeoutError):
                self._process.kill()
            await self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _ctl(self, command: str) -> None:
        await run(str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, command, env=self._env)


@contextlib.asynccontextmanager
async def running(server: PrivateRedis | PrivatePostgres | PrivateRabbitMQ) -> AsyncIterator[None]:
    try:
        await server.start()
        yield
    finally:
        await server.stop()
