"""`--profile DIR`: py-spy samples every service process and the load generator while the load runs, and
writes one flame graph per process (`DIR/<role>-<pid>.svg`), so a run's figures come with where the time went."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path


class Profilers:
    def __init__(self, folder: Path) -> None:
        beside_python = Path(sys.executable).parent / "py-spy"  # a virtualenv's, when its bin is not on the PATH
        found = str(beside_python) if beside_python.exists() else shutil.which("py-spy")
        if found is None:
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
        self._py_spy = found
        self._folder = folder
        self._running: list[asyncio.subprocess.Process] = []

    async def start(self, processes: dict[str, int], seconds: float) -> None:
        """Sample each named process (role -> pid) for `seconds`; the load generator is this process."""
        self._folder.mkdir(parents=True, exist_ok=True)
        for role, pid in {**processes, "load-generator": os.getpid()}.items():
            output = self._folder / f"{role}-{pid}.svg"
            self._running.append(
                await asyncio.create_subprocess_exec(
                    self._py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(max(1, round(seconds))),
                    "--rate",
                    "50",
                    "--output",
                    str(output),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )

    async def finish(self) -> list[Path]:
        """Wait for the flame graphs; answer the ones written."""
        for profiler in self._running:
            await profiler.wait()
        return sorted(self._folder.glob("*.svg"))
