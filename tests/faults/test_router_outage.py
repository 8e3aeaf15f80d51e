"""Found by the PostgreSQL restart: a router whose database is away for a few seconds failed each delivery at
once, the broker redelivered it at once, and after the delivery limit (5) the contact — acknowledged to Twilio
— rested in the dead-letter queue, never stored nor offered. An outage is not a poison message: the router
waits for the service and tries again, holding the delivery."""

from __future__ import annotations

from typing import Any

import pytest

from contactcenter.settings import Settings
from contactcenter.store.conversations import Conversations
from tests.running import run_service

FAILURES = 8  # more than the delivery limit (5)


async def test_a_contact_routed_while_postgresql_is_away_waits_for_it_instead_of_being_dead_lettered(
    service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_inbound = Conversations.record_inbound
    refused: list[str] = []

    async def postgres_is_away(self: Conversations, *args: Any, **kwargs: Any) -> Any:
        if len(refused) < FAILURES:
            refused.append("refused")
            raise ConnectionRefusedError(111, "Connect call failed")
        return await record_inbound(self, *args, **kwargs)

    monkeypatch.setattr(Conversations, "record_inbound", postgres_is_away)
    async with run_service(service_settings) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        assert (await service.post_sms(sender="+14155550101", body="are you there?")).status == 200
        offer = await desktop.receive("offer", timeout=30)
        assert offer["reservation"]["interaction"]["body"] == "are you there?"
        assert len(refused) == FAILURES
        stored = await service.services.pool.fetchval("SELECT count(*) FROM interactions")
        assert stored == 1
        await desktop.close()
