"""Ports a test or a bench hands to a server it starts later (a child process, a private PostgreSQL, a proxy).

Asking the kernel for a free port (bind to 0, close) is a race: the port comes from the ephemeral range, and
until the server binds it, any outgoing connection on the machine — the suite makes thousands — may be given
it as its local port, and the server then fails with "address already in use" (seen in CI: a service process
waited seconds for a database before binding its port). So the ports come from below the ephemeral range,
where the kernel never hands out local ports; each xdist worker takes its own slice, starts at a random place
in it (another run of the suite may share the machine) and never gives a port twice; a port something
already listens on is passed over.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

FIRST = 20000  # above the ports servers are configured on by hand (5432, 6379, 5672, 15672, 4369)
SLICE = 1000
_given: set[int] = set()


def free_port() -> int:
    low, high = _slice()
    start = random.randrange(low, high)
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free port left in {low} to {high - 1} for this worker")


def _slice() -> tuple[int, int]:
    low, high = _outside_ephemeral()
    slices = max(1, (high - low) // SLICE)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % slices if worker.isdigit() else 0
    first = low + index * SLICE
    return first, min(first + SLICE, high)


def _outside_ephemeral() -> tuple[int, int]:
    """The larger of the two stretches the kernel does not give out as local ports: below its range (from
    FIRST) or above it."""
    try:
        ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        ephemeral_low, ephemeral_high = int(ephemeral[0]), int(ephemeral[1])
    except (OSError, ValueError, IndexError):
        ephemeral_low, ephemeral_high = 32768, 60999  # Linux's default
    below, above = (FIRST, ephemeral_low), (ephemeral_high + 1, 65536)
    return max(below, above, key=lambda stretch: stretch[1] - stretch[0])


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
