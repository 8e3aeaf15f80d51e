"""A dispatcher killed in the middle of a delivery: its webhook's line passes to another router soon after — its
lease lapses in a few send timeouts, not half a minute."""

from __future__ import annotations

from contactcenter.host.app import Role
from contactcenter.settings import Settings
from tests.e2e.test_webhooks import event, loopback_settings, publish, register, until
from tests.faults.layout import ServiceProcess, service_environment
from tests.running import run_service
from tests.webhook_receivers import Receivers


async def test_a_killed_dispatchers_webhook_is_sent_by_another_router_within_a_few_send_timeouts(
    service_settings: Settings,
) -> None:
    settings = loopback_settings(service_settings, webhook_timeout_seconds=1.0)
    receivers = Receivers()
    receiver = await receivers.start("hang")  # the first delivery is in flight when its dispatcher dies
    environment = service_environment(settings) | {
        "CC_WEBHOOK_ALLOW_PRIVATE": "true",
        "CC_WEBHOOK_TIMEOUT_SECONDS": "1.0",
        "CC_WEBHOOK_SCAN_SECONDS": "0.1",
    }
    doomed = ServiceProcess("router", environment)
    try:
        await doomed.start()
        async with run_service(settings, Role.API) as api:
            status, _ = await register(api, receiver.url, ["interaction.#"])
            assert status == 201
            await publish(api, *event(1))
            await until(lambda: receiver.open_requests == 1, "the doomed router sends the first delivery")
            doomed.kill()
            async with run_service(settings, Role.ROUTER):
                # Within the poll's deadline (20 s): the lease of before (30 s) held the line past it.
                await until(lambda: len(receiver.received) == 1, "another router sends it again")
    finally:
        await doomed.stop()
        await receivers.stop()
