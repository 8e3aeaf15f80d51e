"""Runs the service in production layout (`--role api` and N times `--role router`, or one embedded process)
and samples each process's CPU and peak memory."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field

import aiohttp
import psutil


@dataclass
class ProcessFigures:
    role: str
    cpu_percent: float = 0.0
    peak_rss_mb: float = 0.0
    rss_mb_samples: list[float] = field(default_factory=list)

    def growth_after_warmup_pct(self) -> float | None:
        """Memory at the end against memory once warm (a fifth into the run): flat means no leak."""
        if len(self.rss_mb_samples) < 10:
            return None
        warm = self.rss_mb_samples[len(self.rss_mb_samples) // 5]
        return round(100 * (self.rss_mb_samples[-1] - warm) / warm, 1)


class ServiceProcesses:
    def __init__(self, env: dict[str, str], roles: list[str], port: int) -> None:
        self._env = env
        self._roles = roles
        self._port = port
        self._processes: list[tuple[str, asyncio.subprocess.Process]] = []
        self._sampler: asyncio.Task[None] | None = None
        self.figures: list[ProcessFigures] = []

    async def start(self) -> None:
        for n, role in enumerate(self._roles):
            env = {**os.environ, **self._env}
            # Only the API role serves on the public port; routers answer health checks on their own.
            env["CC_HTTP_PORT"] = str(self._port if role in ("api", "all") else self._port + 1 + n)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "contactcenter",
                "serve",
                "--role",
                role,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
            )
            self._processes.append((role, process))
        async with aiohttp.ClientSession() as http:
            for n, (role, _) in enumerate(self._processes):
                port = self._port if role in ("api", "all") else self._port + 1 + n
                await _wait_ready(http, f"http://127.0.0.1:{port}/readyz")

    def start_sampling(self) -> None:
        self._sampler = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        handles = [(role, psutil.Process(p.pid)) for role, p in self._processes]
        self.figures = [ProcessFigures(role) for role, _ in handles]
        first = [(h.cpu_times(), time.perf_counter()) for _, h in handles]
        try:
            while True:
                await asyncio.sleep(0.5)
                for figures, (_, handle), (times, started) in zip(self.figures, handles, first, strict=True):
                    rss = handle.memory_info().rss / 2**20
                    figures.rss_mb_samples.append(rss)
                    figures.peak_rss_mb = max(figures.peak_rss_mb, rss)
                    now_times = handle.cpu_times()
                    used = (now_times.user + now_times.system) - (times.user + times.system)
                    figures.cpu_percent = 100 * used / (time.perf_counter() - started)
        except asyncio.CancelledError:
            return

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        for _, process in self._processes:
            process.terminate()
        for _, process in self._processes:
            await asyncio.wait_for(process.wait(), 30)


async def _wait_ready(http: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(90):
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
