"""The benchmark's one command works end to end: a short, slow run through the real edges prints its figures
and the raw limits beside them. (It proves the command, not a speed: figures come from a real run.)"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest


async def test_the_benchmark_command_prints_its_figures_and_the_ratio_to_the_raw_bus() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "--rate",
        "20",
        "--duration",
        "2",
        "--agents",
        "5",
        "--customers",
        "50",
        "--history",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 100)
    assert process.returncode == 0, stderr.decode()[-2000:]
    table, _, line = stdout.decode().strip().rpartition("\n")
    result = json.loads(line)
    assert "arrival -> offer" in table and "machine cpu" in table
    assert result["sent"] == result["acknowledged"] == 40
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert 0 < result["offers"] <= 40
    # Every agent was connected and available before the load began, and stayed so.
    assert result["agent_sockets_dropped"] == 0 and result["agent_errors"] == {}
    # Each customer came with three earlier contacts: every card offered shows them beside the new one.
    assert result["history_per_customer"] == 3 and result["card_timeline_entries_mean"] >= 4
    assert set(result["arrival_to_offer_ms"]) == {"p50", "p95", "p99", "mean"}
    assert {process["role"] for process in result["processes"]} == {"api", "router"}
    assert result["ratio_to_raw_bus_publish"] > 0 and result["raw"]["bus_publish_per_s"] > 0
    # Each raw operation's cost in the whole machine's CPU, and the bound a contact's bus crossing sets.
    assert set(result["raw_machine_cpu_us_per_operation"]) == {
        "bus_publish",
        "bus_consume",
        "postgres_insert",
        "redis_script",
    }
    assert all(cost > 0 for cost in result["raw_machine_cpu_us_per_operation"].values())
    assert result["bus_bound_per_s"] > 0
    bound_ratio = result["sustained_interactions_per_s"] / result["bus_bound_per_s"]
    assert result["ratio_to_bus_bound"] == pytest.approx(bound_ratio, abs=0.002)
    assert "load generator" in result["machine_cpu_percent"]
    assert result["machine_cpu_ms_per_interaction"] > 0
    assert result["context_switches_per_interaction"]["service api"] > 0
    assert all(process["system_calls_per_interaction"] > 0 for process in result["processes"])
