"""Runs the service in production layout (`--role api` and N times `--role router`, or one embedded process)
and samples each process's CPU and peak memory — and the CPU of everything else on the machine (the servers,
the load generator), since on two shared cores they all draw from the same budget."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import aiohttp
import psutil


@dataclass
class ProcessFigures:
    role: str
    cpu_percent: float = 0.0
    cpu_seconds: float = 0.0  # over the sampled window (user + system, from /proc)
    peak_rss_mb: float = 0.0
    rss_mb_samples: list[float] = field(default_factory=list)
    # Read- and write-like system calls over the window (each socket message in or out is one or more): the
    # process's crossings, which the cost model of docs/performance.md counts.
    system_calls: int = 0

    def growth_after_warmup_pct(self) -> float | None:
        """Memory at the end against memory once warm (a fifth into the run): flat means no leak."""
        if len(self.rss_mb_samples) < 10:
            return None
        warm = self.rss_mb_samples[len(self.rss_mb_samples) // 5]
        return round(100 * (self.rss_mb_samples[-1] - warm) / warm, 1)


# The whole machine is read every 5 s (each service process every 0.5 s): often enough to catch a server's
# worker that ends mid-run, seldom enough not to weigh on what it measures.
MACHINE_SAMPLE_TICKS = 10

# Who else runs on the machine, by process name.
MACHINE_GROUPS = {"rabbitmq": ("beam.smp",), "postgres": ("postgres",), "redis": ("redis-server",)}


def _group_of(process: psutil.Process, own: dict[int, str]) -> str:
    if process.pid in own:
        return own[process.pid]
    if process.pid == os.getpid():
        return "load generator"
    name = process.name()
    for group, names in MACHINE_GROUPS.items():
        if name in names:
            return group
    return "other"


def _context_switches(pid: int) -> int:
    """Of every thread of the process (`/proc/<pid>/status` counts only the first): on this kind of machine a
    sleep and a wake-up are what a message between processes costs most."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as status:
            total += sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
    return total


@dataclass(frozen=True)
class _Usage:
    group: str
    cpu_seconds: float
    context_switches: int


def _usage_by_pid(own: dict[int, str]) -> dict[int, _Usage]:
    used: dict[int, _Usage] = {}
    for process in psutil.process_iter():
        try:
            times = process.cpu_times()
            switches = _context_switches(process.pid)
            used[process.pid] = _Usage(_group_of(process, own), times.user + times.system, switches)
        except (psutil.Error, OSError):
            continue  # it ended meanwhile
    return used


class MachineCpu:
    """CPU and context switches per group of processes over a window. Sampled as the window goes, per
    process: a server's worker that ends mid-window (a database connection the pool retired) still counts up
    to its last sample, and one that starts counts from nought. Reading every thread of every process costs
    milliseconds: sample from a worker thread, not on the load generator's loop (the lock keeps a late sample
    and the final one apart)."""

    def __init__(self, own: dict[int, str]) -> None:
        self._own = own
        self._first = _usage_by_pid(own)
        self._last = dict(self._first)
        self._started = time.perf_counter()
        self._sampling = threading.Lock()

    def sample(self) -> None:
        with self._sampling:
            self._last |= _usage_by_pid(self._own)

    def by_group(self) -> tuple[dict[str, float], dict[str, int], float]:
        """CPU seconds and context switches per group since the start, and the seconds the window lasted."""
        self.sample()
        cpu: dict[str, float] = {}
        switches: dict[str, int] = {}
        for pid, last in self._last.items():
            first = self._first.get(pid, _Usage(last.group, 0.0, 0))
            cpu[last.group] = cpu.get(last.group, 0.0) + last.cpu_seconds - first.cpu_seconds
            switches[last.group] = switches.get(last.group, 0) + last.context_switches - first.context_switches
        return cpu, switches, time.perf_counter() - self._started


class ServiceProcesses:
    def __init__(self, env: dict[str, str], roles: list[str], ports: list[int]) -> None:
        if len(ports) != len(roles):
            raise ValueError("each process needs its own port")
        self._env = env
        self._roles = roles
        self._ports = ports
        self._processes: list[tuple[str, asyncio.subprocess.Process]] = []
        self._sampler: asyncio.Task[None] | None = None
        self.figures: list[ProcessFigures] = []
        # CPU per group of processes on the machine over the sampled window, in % of one core, and in all.
        self.machine_cpu_percent: dict[str, float] = {}
        self.machine_cpu_seconds = 0.0
        self.machine_cpu_seconds_by_group: dict[str, float] = {}
        self.machine_context_switches: dict[str, int] = {}
        self._machine: MachineCpu | None = None

    @property
    def public_ports(self) -> list[int]:
        """The ports of the processes serving webhooks and agents' sockets (API or all-in-one)."""
        return [port for port, role in zip(self._ports, self._roles, strict=True) if role in ("api", "all")]

    async def start(self) -> None:
        for n, role in enumerate(self._roles):
            env = {**os.environ, **self._env}
            # Routers answer health checks on their own port.
            env["CC_HTTP_PORT"] = str(self._ports[n])
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
            for (role, process), port in zip(self._processes, self._ports, strict=True):
                await _wait_ready(http, f"http://127.0.0.1:{port}/readyz", role, process)

    @property
    def pids(self) -> dict[str, int]:
        return {f"{role}{n}" if n else role: p.pid for n, (role, p) in enumerate(self._processes)}

    def start_sampling(self, others: dict[int, str] | None = None) -> None:
        """Start the window; `others` names more processes of the bench's own (pid -> group) for the machine's
        figures."""
        own = {process.pid: f"service {role}" for role, process in self._processes}
        self._machine = MachineCpu(own | (others or {}))
        self._sampler = asyncio.create_task(self._sample())

    async def stop_sampling(self) -> None:
        """End the window: CPU of each group of processes on the machine since `start_sampling`."""
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        if self._machine is not None:
            used, switches, elapsed = await asyncio.to_thread(self._machine.by_group)
            ranked = sorted(used.items(), key=lambda item: -item[1])
            self.machine_cpu_percent = {group: round(100 * seconds / elapsed, 1) for group, seconds in ranked}
            self.machine_cpu_seconds = sum(used.values())
            self.machine_cpu_seconds_by_group = dict(ranked)
            self.machine_context_switches = dict(sorted(switches.items(), key=lambda item: -item[1]))

    async def _sample(self) -> None:
        handles = [(role, psutil.Process(p.pid)) for role, p in self._processes]
        self.figures = [ProcessFigures(role) for role, _ in handles]
        first = [(h.cpu_times(), time.perf_counter()) for _, h in handles]
        first_calls = [_system_calls(h) for _, h in handles]

        def measure() -> None:
            for figures, (_, handle), (times, started), calls in zip(
                self.figures, handles, first, first_calls, strict=True
            ):
                figures.system_calls = _system_calls(handle) - calls
                rss = handle.memory_info().rss / 2**20
                figures.rss_mb_samples.append(rss)
                figures.peak_rss_mb = max(figures.peak_rss_mb, rss)
                now_times = handle.cpu_times()
                figures.cpu_seconds = (now_times.user + now_times.system) - (times.user + times.system)
                figures.cpu_percent = 100 * figures.cpu_seconds / (time.perf_counter() - started)

        try:
            for tick in itertools.count(1):
                await asyncio.sleep(0.5)
                if self._machine is not None and tick % MACHINE_SAMPLE_TICKS == 0:
                    await asyncio.to_thread(self._machine.sample)
                measure()
        except asyncio.CancelledError:
            measure()  # the window ends now: its CPU up to the end, not up to the last tick

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        for _, process in self._processes:
            process.terminate()
        for _, process in self._processes:
            await asyncio.wait_for(process.wait(), 30)


def _system_calls(process: psutil.Process) -> int:
    counters = process.io_counters()  # Linux: syscr and syscw of /proc/<pid>/io
    return int(counters.read_count + counters.write_count)


async def _wait_ready(http: aiohttp.ClientSession, url: str, role: str, process: asyncio.subprocess.Process) -> None:
    try:
        async with asyncio.timeout(90):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"the {role} process exited with {process.returncode} before it was ready")
                try:
                    async with http.get(url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise RuntimeError(f"the {role} process was not ready in 90 s ({url})") from None
