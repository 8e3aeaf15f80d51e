"""A server the suite needs that does not answer fails the run, on xdist's workers as alone: nothing is skipped
(tests/conftest.py). Each case runs pytest on one small test file with `TEST_REDIS_URL` on a port nobody serves,
or served for the controller's check only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SMALL = "tests/unit/test_origins.py"


def _suite(redis_port: int, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *options, SMALL],
        cwd=ROOT,
        env={**os.environ, "TEST_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"},
        capture_output=True,
        text=True,
        timeout=110,
    )


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_redis_that_does_not_answer_stops_the_run_before_any_test(workers: str) -> None:
    port = free_port()
    done = _suite(port, "-n", workers)
    assert done.returncode == 3, done.stdout[-2000:]
    assert f"Redis at 127.0.0.1:{port} does not answer" in done.stdout + done.stderr
    assert " passed" not in done.stdout and "skipped" not in done.stdout


def test_a_redis_gone_before_the_workers_check_fails_their_tests_naming_it() -> None:
    """The controller's check is answered, then the server goes: each worker's tests fail (a worker that exited
    instead would be replaced by xdist again and again)."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(1)
    port = int(listening.getsockname()[1])

    def answer_once() -> None:
        connection, _ = listening.accept()
        connection.close()
        listening.close()

    answering = threading.Thread(target=answer_once)
    answering.start()
    try:
        done = _suite(port, "-n", "1")
    finally:
        answering.join(timeout=5)
    assert done.returncode == 1, done.stdout[-2000:]
    assert f"Redis at 127.0.0.1:{port} does not answer" in done.stdout
    assert " passed" not in done.stdout and "skipped" not in done.stdout
    assert "errors" in done.stdout.splitlines()[-1]
