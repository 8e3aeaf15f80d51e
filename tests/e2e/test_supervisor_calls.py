"""An agent on a call shows busy on the wallboard for as long as the call occupies it (live state's
`agent.call_started` / `agent.call_ended`): through the signed voice webhooks, on the real PostgreSQL, Redis and
RabbitMQ — also once it completed the call's conversation, and until the call's final status."""

from __future__ import annotations

import uuid

from contactcenter.host.app import Role
from contactcenter.settings import Settings
from tests.e2e.test_supervisors import agent_shows, queue_shows
from tests.e2e.test_voice import VOICE, call
from tests.e2e.test_voice_busy import complete, connected_call, setup
from tests.running import RunningService, run_service


async def test_an_agent_on_a_call_shows_busy_with_its_call_until_the_call_ends(service: RunningService) -> None:
    desktop, _ = await setup(service)
    sid = "CA" + uuid.uuid4().hex
    reservation = await connected_call(service, desktop, sid)
    shown = await agent_shows(service, desktop.agent_id, state="busy", call=sid)
    assert shown["call_since"] is not None

    await complete(desktop, reservation)  # the conversation is done, the call is not
    shown = await agent_shows(service, desktop.agent_id, working=[], handled_today=1)
    assert (shown["state"], shown["call"]) == ("busy", sid)
    await queue_shows(service, "sales", agents={"available": 0, "busy": 1, "away": 0, "wrap_up": 0, "offline": 0})

    assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="42")).status == 200
    await agent_shows(service, desktop.agent_id, state="available", call=None)
    await queue_shows(service, "sales", agents={"available": 1, "busy": 0, "away": 0, "wrap_up": 0, "offline": 0})
    await desktop.close()


async def test_a_call_that_ends_while_live_state_is_lost_leaves_the_wallboard(service_settings: Settings) -> None:
    """Redis loses live state during a call, and the call ends before any router rebuilt it: the wallboard shows
    the agent off the call once a router runs again (PostgreSQL kept the call, and tells its end), without its
    watch starting over."""
    async with run_service(service_settings, Role.API) as api:
        async with run_service(service_settings, Role.ROUTER):
            desktop, _ = await setup(api)
            sid = "CA" + uuid.uuid4().hex
            await connected_call(api, desktop, sid)
            await agent_shows(api, desktop.agent_id, call=sid)
        # No router runs: Redis loses everything of the service's live state, and the call ends meanwhile.
        redis = api.services.redis
        lost = [key async for key in redis.scan_iter(match=f"{service_settings.namespace}:*", count=1000)]
        assert lost and await redis.delete(*lost) == len(lost)
        assert (await call(api, f"{VOICE}/status", sid, status="completed", CallDuration="42")).status == 200
        async with run_service(service_settings, Role.ROUTER):
            await agent_shows(api, desktop.agent_id, call=None)
        await desktop.close()
