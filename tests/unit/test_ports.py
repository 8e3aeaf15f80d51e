"""The ports a test hands to a server it starts later are never ones the kernel gives out as local ports."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from bench import ports


def test_ports_are_outside_the_ephemeral_range_and_never_given_twice() -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    given = [ports.free_port() for _ in range(50)]
    assert len(set(given)) == len(given)
    assert not [port for port in given if low <= port <= high], (low, high, given)


def test_a_port_something_listens_on_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = ports._slice()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", first))
        listening.listen(1)
        monkeypatch.setattr("bench.ports.random.randrange", lambda low, high: first)
        monkeypatch.setattr(ports, "_given", set())
        assert ports.free_port() == first + 1
        assert ports.free_port() == first + 2


def test_each_worker_has_a_slice_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    slices = set()
    for worker in ("gw0", "gw1", "gw2", "gw3"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.add(ports._slice())
    assert len(slices) == 4
    ranges = sorted(slices)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
