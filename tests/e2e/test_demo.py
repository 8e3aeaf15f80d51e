"""The demo center: `contactcenter demo` loads a car dealership (queues, agents, a supervisor, clients with a
history), and `contactcenter simulate` makes its figures move through the service's real edges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from contactcenter.host.demo import CLIENTS, QUEUES, describe, load_demo
from contactcenter.host.simulate import simulate
from tests.e2e.test_supervisors import bearer, queue_shows, stats, until
from tests.running import RunningService


async def test_the_demo_loads_a_dealership_once_and_simulated_traffic_moves_its_figures(
    service: RunningService,
) -> None:
    services = service.services
    people = await load_demo(services.pool, services.directory, None)
    assert await load_demo(services.pool, services.directory, people) == people  # loaded once

    async def all_queues_seen() -> bool:
        seen = await stats(service, people.supervisor)
        return sorted(q["name"] for q in seen["queues"]) == sorted(q.name for q in QUEUES)

    await until(all_queues_seen, "the supervisor sees the demo's three queues")
    assert "/supervisor" in describe(people, service.base_url)

    name, phone, _, history = CLIENTS[0]
    async with service.http.get(
        f"{service.base_url}/api/v1/clients/lookup",
        params={"phone": phone},
        headers=bearer(people.agents["Ann Sales"]),
    ) as response:
        assert response.status == 200, await response.text()
        card = await response.json()
    assert card["client"]["display_name"] == name
    assert {t["channel"] for t in card["timeline"]} == {channel for channel, *_ in history}

    counted = await simulate(service.base_url, service.settings, people, per_minute=120, duration_seconds=10, seed=7)
    assert counted["sms"] >= 1 and counted["answered"] >= 1, counted

    async def sales_moved() -> bool:
        sales = await queue_shows(service, "sales")
        return bool(sales["offered"] >= 1 and sales["answered"] >= 1)

    await until(sales_moved, "the sales queue shows the simulated contacts offered and answered")


def test_the_command_line_offers_demo_and_simulate() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "contactcenter", "--help"], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    assert "demo" in helped.stdout and "simulate" in helped.stdout
