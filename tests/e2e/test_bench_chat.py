"""The bench drives chat: visitors on real sockets in the traffic mix (stored once each, none lost), and the
chat bench's latencies both ways and idle sockets per GiB. (It proves the commands, not a speed.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import pytest


async def _run(module: str, *arguments: str) -> dict[str, Any]:
    """Run `python -m <module>` with the arguments; answer its last line, JSON."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group: a bench that hangs goes with its service processes
    )
    communicating = asyncio.ensure_future(process.communicate())
    try:
        stdout, stderr = await asyncio.wait_for(asyncio.shield(communicating), 100)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = await communicating
        pytest.fail(f"{module} did not finish in 100 s; its progress:\n{stderr.decode()[-3000:]}")
    assert process.returncode == 0, stderr.decode()[-2000:]
    result: dict[str, Any] = json.loads(stdout.decode().strip().rpartition("\n")[2])
    return result


async def test_the_traffic_mix_sends_chat_on_visitors_sockets_and_every_acknowledged_message_is_stored_once() -> None:
    result = await _run(
        "bench",
        "--rate",
        "20",
        "--duration",
        "2",
        "--agents",
        "5",
        "--customers",
        "30",
        "--mix",
        "sms=1,chat=1",
        "--skip-raw",
    )
    assert result["mix"] == {"sms": 0.5, "chat": 0.5}
    assert result["sent"] == result["acknowledged"] == 40
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["waiting_for_agent_at_end"] == 0
    assert result["agent_errors"] == {} and result["client_failures"] == {}


async def test_the_chat_bench_gives_both_latencies_and_idle_sockets_per_gib() -> None:
    result = await _run("bench.chat", "--chats", "10", "--rate", "10", "--agents", "2", "--idle", "50")
    assert result["acknowledged"] == 10 and result["errors"] == []
    for direction in ("visitor_to_agent_ms", "agent_to_visitor_ms"):
        assert set(result[direction]) == {"p50", "p95", "max"} and result[direction]["p50"] > 0
    assert result["idle_sockets"] == 50
