"""A dead receiver's line is bounded (`CC_WEBHOOK_MAX_PENDING`): past it, the webhook is suspended, its line
parked for an admin's replay and later events no longer recorded for it — visible in the listing — while the
other webhooks go on; the replay resumes it and tells which events it missed (the event log has them)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from contactcenter.settings import Settings
from tests.e2e.test_webhooks import event, loopback_settings, publish, register, until
from tests.running import RunningService, run_service
from tests.webhook_receivers import Receivers

BOUND = 3


async def _listed(service: RunningService, webhook_id: str) -> dict[str, Any]:
    async with service.http.get(f"{service.base_url}/api/v1/webhooks", headers=service.admin_headers()) as response:
        assert response.status == 200
        listed: dict[str, Any] = {hook["id"]: hook for hook in (await response.json())["webhooks"]}[webhook_id]
        return listed


async def _recorded(service: RunningService, webhook_id: str) -> int:
    count: int = await service.services.pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1::uuid", webhook_id
    )
    return count


async def test_a_dead_receivers_line_past_the_bound_is_parked_until_a_replay_and_the_others_go_on(
    service_settings: Settings,
) -> None:
    receivers = Receivers()
    # Its first delivery hangs until every event is recorded (the line is 6 long when it fails), then all fail.
    dead = await receivers.start("hang", *["fail"] * 10_000)
    healthy = await receivers.start()
    settings = loopback_settings(
        service_settings, webhook_max_pending=BOUND, webhook_retries=100, webhook_timeout_seconds=20.0
    )
    try:
        async with run_service(settings) as service:
            _, suspended = await register(service, dead.url, ["interaction.#"])
            _, other = await register(service, healthy.url, ["interaction.#"])
            for n in range(1, 7):
                await publish(service, *event(n))
            await until(lambda: len(healthy.received) == 6, "the healthy receiver gets every event")
            dead.released.set()

            listed: dict[str, Any] = {}

            async def suspended_now() -> bool:
                listed.update(await _listed(service, suspended["id"]))
                return listed["suspended_at"] is not None

            await _until_async(suspended_now, "the dead receiver's webhook is suspended")
            assert listed["parked"] == 6 and listed["missed_after"] == 6
            assert (await _listed(service, other["id"]))["suspended_at"] is None
            async with service.http.get(f"{service.base_url}/metrics") as response:
                assert "\ncc_webhook_suspensions_total 1.0\n" in await response.text()

            # While suspended, its events are not recorded: its rows stay bounded; the other goes on.
            for n in range(7, 10):
                await publish(service, *event(n))
            await until(lambda: len(healthy.received) == 9, "the healthy receiver gets the later events")
            assert await _recorded(service, suspended["id"]) == 6

            dead.script.clear()  # the receiver is mended
            replay = f"{service.base_url}/api/v1/webhooks/{suspended['id']}/replay"
            async with service.http.post(replay, headers=service.admin_headers()) as response:
                assert response.status == 200
                answer = await response.json()
            assert answer["replayed"] == 6 and answer["missed_after"] == 6
            await until(lambda: len(dead.received) == 6, "the parked deliveries arrive after the replay")
            assert (await _listed(service, suspended["id"]))["suspended_at"] is None

            await publish(service, *event(10))
            await until(lambda: len(dead.received) == 7, "a resumed webhook records and sends new events")
    finally:
        await receivers.stop()
    assert [json.loads(received.body)["id"] for received in dead.received] == [str(n) for n in (1, 2, 3, 4, 5, 6, 10)]


async def _until_async(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 20.0
    while not await condition():
        assert time.monotonic() < deadline, f"not within 20s: {what}"
        await asyncio.sleep(0.05)
