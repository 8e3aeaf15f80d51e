"""The queue a caller chose in the menu is kept only as long as it is needed: deleted once the router recorded the
call in it, or after a day when the call never came through (migration 023), on the real PostgreSQL."""

from __future__ import annotations

import uuid

from tests.e2e.test_voice import CALLER, MENU, call_to_queue, card_of, put_menu
from tests.running import RunningService

CHOICES = "SELECT provider_id FROM contact_queue_choices ORDER BY provider_id"


async def test_a_menu_choice_is_deleted_once_its_call_is_recorded_in_the_queue_chosen(service: RunningService) -> None:
    await service.create_queue("sales", ["voice"])
    await service.create_queue("service", ["voice"])
    await put_menu(service, MENU)
    desktop = await service.available_agent("Ann", ("service",))
    sid = "CA" + uuid.uuid4().hex
    await call_to_queue(service, sid, "2")
    offer = await desktop.receive("offer")
    assert offer["reservation"]["queue"] == "service"  # the choice was read before it went
    await card_of(service, CALLER)
    pool = service.services.pool
    assert await pool.fetch(CHOICES) == []
    await desktop.close()


async def test_a_choice_whose_call_never_came_is_deleted_after_a_day(service: RunningService) -> None:
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    pool = service.services.pool
    await pool.execute(
        "INSERT INTO contact_queue_choices (channel, provider_id, queue_name, chosen_at) VALUES "
        "('voice', 'CAstale', 'sales', now() - interval '25 hours'), "
        "('voice', 'CAfresh', 'sales', now() - interval '1 hour')"
    )
    await call_to_queue(service, "CA" + uuid.uuid4().hex, "1")
    await card_of(service, CALLER)
    assert [row["provider_id"] for row in await pool.fetch(CHOICES)] == ["CAfresh"]
