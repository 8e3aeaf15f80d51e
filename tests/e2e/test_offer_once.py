"""A desktop is shown each offer once. A router that takes over a contact after another died (a redelivery)
cannot know whether the agent was told of its pending reservation, so it offers it once more — possibly after
the agent accepted it. The socket that has shown it already does not show it again (the fault test of a router
killed mid-batch found agents accepting the same contact twice)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from contactcenter.live import LiveChanges, Reservation
from tests.running import AgentDesktop, RunningService

SENDER = "+14155550177"


async def _offered(service: RunningService) -> tuple[AgentDesktop, dict[str, Any], Reservation]:
    queue = await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    await service.post_sms(sender=SENDER, body="Is my car ready?")
    offer = await desktop.receive("offer")
    shown = offer["reservation"]
    reservation = Reservation(
        id=uuid.UUID(shown["id"]),
        agent_id=uuid.UUID(desktop.agent_id),
        conversation_id=uuid.UUID(shown["conversation_id"]),
        queue_id=uuid.UUID(queue["id"]),
        interaction_id=uuid.UUID(shown["interaction"]["id"]),
        expires_at_ms=int(datetime.fromisoformat(shown["expires_at"]).timestamp() * 1000),
    )
    return desktop, offer, reservation


async def _then_only_the_marker(service: RunningService, desktop: AgentDesktop, agent_id: uuid.UUID) -> None:
    """A notice sent after the repeat comes next: nothing (no second offer) came in between."""
    marker = Reservation(uuid.uuid4(), agent_id, uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), 0)
    await service.services.notices.announce(LiveChanges(revoked=[marker]))
    revoked = await desktop.receive("revoked")
    assert revoked["reservation_id"] == str(marker.id)


async def test_an_offer_told_again_after_the_agent_accepted_it_is_not_shown_again(service: RunningService) -> None:
    desktop, _, reservation = await _offered(service)
    await desktop.command({"type": "accept", "reservation_id": str(reservation.id)}, "accepted")

    await service.services.notices.offer(reservation)
    await _then_only_the_marker(service, desktop, reservation.agent_id)


async def test_a_pending_offer_told_twice_is_shown_once(service: RunningService) -> None:
    desktop, _, reservation = await _offered(service)

    await service.services.notices.offer(reservation)
    await _then_only_the_marker(service, desktop, reservation.agent_id)
    await desktop.command({"type": "accept", "reservation_id": str(reservation.id)}, "accepted")
