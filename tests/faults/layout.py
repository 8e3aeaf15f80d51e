"""The service in production layout for fault tests: `--role api` and `--role router` as processes of their own
(as `bench/processes.py` runs them), each of which a test may SIGKILL and start again."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import aiohttp

from bench.ports import free_port
from contactcenter.settings import Settings

READY_SECONDS = 90.0


def service_environment(settings: Settings) -> dict[str, str]:
    """The settings of a test as the `CC_` variables a process reads."""
    secrets = {
        "CC_DATABASE_URL": settings.database_url,
        "CC_REDIS_URL": settings.redis_url,
        "CC_AMQP_URL": settings.amqp_url,
        "CC_ADMIN_TOKEN": settings.admin_token,
        "CC_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
    }
    plain = {
        "CC_NAMESPACE": settings.namespace,
        "CC_DATABASE_SCHEMA": settings.database_schema,
        "CC_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "CC_TWILIO_API_BASE": settings.twilio_api_base,
        "CC_PUBLISH_TIMEOUT_SECONDS": str(settings.publish_timeout_seconds),
        "CC_LIVE_CHECK_SECONDS": str(settings.live_check_seconds),
        "CC_RESERVATION_TIMEOUT_SECONDS": str(settings.reservation_timeout_seconds),
    }
    return plain | {name: value.get_secret_value() for name, value in secrets.items() if value is not None}


class ServiceProcess:
    def __init__(self, role: str, environment: dict[str, str]) -> None:
        self.role = role
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._environment = environment
        self._process: asyncio.subprocess.Process | None = None
        # Out of the test's output (and of a `.env` in the worktree): the process's log, for a failing run.
        self._dir = Path(tempfile.mkdtemp(prefix=f"cc-fault-{role}-"))

    async def start(self) -> None:
        env = {**os.environ, **self._environment, "CC_HTTP_PORT": str(self.port)}
        with self._log_file() as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "contactcenter",
                "serve",
                "--role",
                self.role,
                env=env,
                cwd=self._dir,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        await self._wait_ready()

    def _log_file(self) -> BinaryIO:
        return (self._dir / "log").open("ab")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye to the broker; what it held unacknowledged comes back."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)

    async def terminate(self, within_seconds: float) -> int:
        """SIGTERM, as an orchestrator stops a process in a rolling restart; its exit code, which must come within
        `within_seconds`."""
        assert self._process is not None
        self._process.terminate()
        async with asyncio.timeout(within_seconds):
            return await self._process.wait()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 30)
            except TimeoutError:
                self._process.kill()
        if self._process is not None:
            await self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def log(self) -> str:
        return (self._dir / "log").read_text(errors="replace")

    async def _wait_ready(self) -> None:
        assert self._process is not None
        async with aiohttp.ClientSession() as http, asyncio.timeout(READY_SECONDS):
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(f"the {self.role} process exited ({self._process.returncode}): {self.log()}")
                try:
                    async with http.get(f"{self.base_url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.2)
