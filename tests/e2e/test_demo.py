"""The demo center: `contactcenter demo` loads a car dealership (queues, agents, a supervisor, clients with a
history), and `contactcenter simulate` makes its figures move through the service's real edges."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contactcenter.host.demo import CLIENTS, QUEUES, describe, load_demo
from contactcenter.host.simulate import simulate
from contactcenter.settings import Settings
from tests.e2e.test_supervisors import bearer, stats, until
from tests.mail import OUR_DOMAIN, smtp_port
from tests.running import RunningService, run_service


@pytest.fixture
async def service(service_settings: Settings) -> AsyncIterator[RunningService]:
    """The service taking mail too, so that the simulation has every channel to send on."""
    settings = service_settings.model_copy(update={"mail_domains": [OUR_DOMAIN], "smtp_port": 0})
    async with run_service(settings) as running:
        yield running


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

    # The simulation is told the SMTP port the service listens on (0 asked a free one).
    settings = service.settings.model_copy(update={"smtp_port": smtp_port(service)})
    counted = await simulate(service.base_url, settings, people, per_minute=120, duration_seconds=10, seed=7)
    assert all(counted.get(channel, 0) >= 1 for channel in ("sms", "voice", "email", "chat")), counted
    assert counted["answered"] >= 1, counted

    async def every_channel_offered() -> bool:
        seen = await stats(service)
        offered = {c for q in seen["queues"] for c, figures in q["channels"].items() if figures["offered"] >= 1}
        answered = sum(q["answered"] for q in seen["queues"])
        return offered >= {"sms", "voice", "email", "chat"} and answered >= 1

    await until(every_channel_offered, "the queues show simulated contacts offered on every channel, some answered")
    # The calls' ends came as Twilio's status callbacks: every simulated call is over.
    async with service.services.pool.acquire() as conn:
        calls = await conn.fetch("SELECT status FROM voice_calls")
    assert calls and {row["status"] for row in calls} == {"completed"}, calls


def test_the_command_line_offers_demo_and_simulate() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "contactcenter", "--help"], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    assert "demo" in helped.stdout and "simulate" in helped.stdout
