"""A call occupies its agent on every channel until it ends: through the signed voice webhooks, on the real
PostgreSQL, Redis and RabbitMQ. The agent on a connected call gets no offer of any channel — whether or not it
completed the call's conversation — until the call's final status comes, late, repeated or out of order; a final
status that never comes is bounded by `CC_VOICE_MAX_CALL_SECONDS`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from contactcenter.clock import now_ms
from contactcenter.settings import Settings
from tests.e2e.test_voice import CALLER, MENU, VOICE, call, call_events, call_to_queue, card_of, put_menu
from tests.running import AgentDesktop, FakeTwilioApi, RunningService, run_service

TEXTER = "+14155550177"


async def connected_call(service: RunningService, desktop: AgentDesktop, sid: str) -> dict[str, Any]:
    """A call chosen into `sales`, offered to and accepted by `desktop`, connected: its reservation."""
    await call_to_queue(service, sid, "1")
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["provider_id"] == sid
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    reservation: dict[str, Any] = offer["reservation"]
    return reservation


async def complete(desktop: AgentDesktop, reservation: dict[str, Any]) -> None:
    await desktop.command({"type": "complete", "conversation_id": reservation["conversation_id"]}, "completed")


async def text_waits_unoffered(service: RunningService, queue: dict[str, Any]) -> None:
    """An SMS arrives and waits in `queue`: the router has queued it and live state offered it to nobody."""
    assert (await service.post_sms(sender=TEXTER, body="Where is my order?")).status == 200
    async with asyncio.timeout(15):
        while await service.services.live.queue_length(uuid.UUID(queue["id"])) != 1:
            await asyncio.sleep(0.05)


async def offered_the_text(desktop: AgentDesktop) -> None:
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["channel"] == "sms"
    assert offer["reservation"]["interaction"]["from_address"] == TEXTER


async def setup(service: RunningService) -> tuple[AgentDesktop, dict[str, Any]]:
    await service.create_queue("sales", ["voice"])
    texts = await service.create_queue("texts", ["sms"])
    await put_menu(service, MENU)
    return await service.available_agent("Ann", ("sales", "texts")), texts


async def test_an_agent_who_completed_its_call_gets_no_offer_of_any_channel_until_the_call_ends(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    desktop, texts = await setup(service)
    sid = "CA" + uuid.uuid4().hex
    reservation = await connected_call(service, desktop, sid)
    assert [c["CallSid"] for c in fake_twilio.calls] == [sid]
    await complete(desktop, reservation)  # still on the phone: the desktop's work is done, the call is not

    await text_waits_unoffered(service, texts)
    status = await service.services.live.agent_status(uuid.UUID(desktop.agent_id))
    assert (status.state, status.load) == ("available", 0)
    # A late non-final status, and the queue's own callback of the redirect, end nothing.
    await call(service, f"{VOICE}/status", sid, status="in-progress")
    await call(service, f"{VOICE}/queue", sid, status="in-progress", QueueResult="redirected", QueueTime="4")
    assert await service.services.live.queue_length(uuid.UUID(texts["id"])) == 1

    assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="42")).status == 200
    await offered_the_text(desktop)
    await desktop.close()


async def test_a_call_that_ends_before_its_agent_completes_frees_the_agent_at_the_completion(
    service: RunningService,
) -> None:
    desktop, texts = await setup(service)
    sid = "CA" + uuid.uuid4().hex
    reservation = await connected_call(service, desktop, sid)
    await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="30")
    await text_waits_unoffered(service, texts)  # the agent still holds the call's conversation (its wrap-up)
    await complete(desktop, reservation)
    await offered_the_text(desktop)
    await desktop.close()


async def test_a_storm_of_out_of_order_statuses_frees_the_agent_once_and_a_late_one_occupies_it_no_more(
    service: RunningService,
) -> None:
    desktop, texts = await setup(service)
    sid = "CA" + uuid.uuid4().hex
    reservation = await connected_call(service, desktop, sid)
    await complete(desktop, reservation)
    await text_waits_unoffered(service, texts)
    statuses = ["in-progress", "completed", "ringing", "completed", "busy", "in-progress", "no-answer", "completed"]
    answers = await asyncio.gather(
        *(call(service, f"{VOICE}/status", sid, status=status, CallDuration="9") for status in statuses * 3)
    )
    assert [answer.status for answer in answers] == [200] * len(statuses) * 3
    await offered_the_text(desktop)
    # The same accept again (a desktop's retry, late) and a late ringing connect nothing and occupy nobody.
    await call(service, f"{VOICE}/status", sid, status="ringing")
    await desktop.close()


async def test_a_caller_who_hangs_up_while_the_call_is_being_connected_leaves_the_agent_free(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    desktop, texts = await setup(service)
    sid = "CA" + uuid.uuid4().hex

    async def hang_up(call_sid: str) -> None:  # the final status lands before the connection is recorded
        assert (await call(service, f"{VOICE}/status", call_sid, status="completed", CallDuration="5")).status == 200

    fake_twilio.before_call_update = hang_up
    reservation = await connected_call(service, desktop, sid)
    assert [c["CallSid"] for c in fake_twilio.calls] == [sid]
    await complete(desktop, reservation)
    assert (await service.post_sms(sender=TEXTER, body="Where is my order?")).status == 200
    await offered_the_text(desktop)
    assert await service.services.live.queue_length(uuid.UUID(texts["id"])) == 0
    await desktop.close()


async def test_a_call_whose_final_status_never_comes_frees_its_agent_after_the_longest_call(
    service_settings: Settings,
) -> None:
    async with run_service(service_settings.model_copy(update={"voice_max_call_seconds": 60})) as service:
        desktop, texts = await setup(service)
        sid = "CA" + uuid.uuid4().hex
        reservation = await connected_call(service, desktop, sid)
        await complete(desktop, reservation)
        await text_waits_unoffered(service, texts)
        live = service.services.live
        # The sweep before the bound leaves the agent on the call; the sweep past it frees it.
        assert (await live.expire_reservations(now_ms() + 30_000)).offers == []
        changes = await live.expire_reservations(now_ms() + 61_000)
        await service.services.notices.announce(changes)
        await offered_the_text(desktop)
        await desktop.close()


PUBLIC_URL = "https://cc.example.test"  # what Twilio calls: placed calls ask for their status callbacks there


@contextlib.asynccontextmanager
async def placing_calls(settings: Settings) -> AsyncIterator[tuple[RunningService, dict[str, Any]]]:
    """A service whose placed calls ask for their status callbacks (CC_PUBLIC_URL set), with a voice queue and
    its menu, and a queue of texts (the other channel's work an agent on the phone must not be offered)."""
    async with run_service(settings.model_copy(update={"public_url": PUBLIC_URL})) as service:
        texts = await service.create_queue("texts", ["sms"])
        await service.create_queue("sales", ["voice"])
        await put_menu(service, MENU)
        yield service, texts


async def test_the_call_a_callback_request_places_occupies_its_agent_until_that_call_ends(
    service_settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    async with placing_calls(service_settings) as (service, texts):
        sid = "CA" + uuid.uuid4().hex
        await call_to_queue(service, sid, "1")
        await card_of(service, CALLER)  # its contact waits: nobody is there yet
        await call(service, f"{VOICE}/leave?max_wait=120", sid, Digits="#")
        await call(service, f"{VOICE}/queue", sid, status="completed", QueueResult="hangup")
        await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="30")

        desktop = await service.available_agent("Ann", ("sales", "texts"))
        offer = await desktop.receive("offer")
        assert offer["reservation"]["interaction"]["provider_id"] == sid
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        (placed,) = fake_twilio.placed
        assert placed["StatusCallback"] == PUBLIC_URL + f"{VOICE}/status?placed=1"
        assert placed["StatusCallbackMethod"] == "POST"
        back = placed["CallSid"]
        await complete(desktop, offer["reservation"])  # its desktop work is done; the call back is not

        await text_waits_unoffered(service, texts)
        # The request's own call ended long ago: its late statuses free nobody; nor do the new call's non-final.
        await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="30")
        for status in ("initiated", "ringing", "in-progress"):
            await call(service, f"{VOICE}/status", back, status=status)
        assert await service.services.live.queue_length(uuid.UUID(texts["id"])) == 1

        statuses = ["completed", "in-progress", "completed", "ringing", "initiated"] * 3
        answers = await asyncio.gather(
            *(call(service, f"{VOICE}/status", back, status=status, CallDuration="73") for status in statuses)
        )
        assert [answer.status for answer in answers] == [200] * len(statuses)
        await offered_the_text(desktop)
        # Later still, another final status of it: nothing changes twice.
        await call(service, f"{VOICE}/status", back, status="no-answer", CallDuration="1")
        (ended,) = await call_events(service, "call.ended", back)
        assert ended["data"] == {
            "call_sid": back,
            "status": "completed",
            "agent_id": desktop.agent_id,
            "duration_seconds": 73,
        }
        await desktop.close()


async def test_a_click_to_call_occupies_its_agent_until_its_final_status(
    service_settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    async with placing_calls(service_settings) as (service, texts):
        await service.post_sms(sender=CALLER, body="Please call me")
        card = await card_of(service, CALLER)
        agent = await service.create_agent("Ann", ["texts"])
        desktop = await service.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        first = await desktop.receive("offer")  # the customer's text: taken and done with, before the call
        await desktop.command({"type": "accept", "reservation_id": first["reservation"]["id"]}, "accepted")
        await complete(desktop, first["reservation"])
        headers = {"Authorization": f"Bearer {agent['token']}"}
        url = f"{service.base_url}/api/v1/voice/calls"
        async with service.http.post(url, json={"client_id": card["client"]["id"]}, headers=headers) as response:
            assert response.status == 201, await response.text()
            placed = await response.json()
        assert fake_twilio.placed[0]["StatusCallback"] == PUBLIC_URL + f"{VOICE}/status?placed=1"

        await text_waits_unoffered(service, texts)
        await call(service, f"{VOICE}/status", placed["call_sid"], status="in-progress")
        assert await service.services.live.queue_length(uuid.UUID(texts["id"])) == 1
        await call(service, f"{VOICE}/status", placed["call_sid"], status="completed", CallDuration="12")
        await offered_the_text(desktop)
        await desktop.close()


async def test_a_placed_call_that_ends_before_twilio_answered_the_request_leaves_its_agent_free(
    service_settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    async with placing_calls(service_settings) as (service, _texts):
        await service.post_sms(sender=CALLER, body="Please call me")
        card = await card_of(service, CALLER)
        agent = await service.create_agent("Ann", ["texts"])
        desktop = await service.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        first = await desktop.receive("offer")
        await desktop.command({"type": "accept", "reservation_id": first["reservation"]["id"]}, "accepted")
        await complete(desktop, first["reservation"])

        async def fails_at_once(call_sid: str, form: dict[str, str]) -> None:
            # Twilio posts the final status (to the URL the request gave) before its REST answer is read.
            path = form["StatusCallback"].removeprefix(PUBLIC_URL)
            for status in ("failed", "failed"):
                answer = await call(service, path, call_sid, status=status, CallDuration="0")
                assert answer.status == 200

        fake_twilio.before_call_placed = fails_at_once
        headers = {"Authorization": f"Bearer {agent['token']}"}
        url = f"{service.base_url}/api/v1/voice/calls"
        async with service.http.post(url, json={"client_id": card["client"]["id"]}, headers=headers) as response:
            assert response.status == 201, await response.text()
            placed = await response.json()
        # Ann is not on the phone: the next text is hers at once.
        assert (await service.post_sms(sender=TEXTER, body="Where is my order?")).status == 200
        await offered_the_text(desktop)
        (ended,) = await call_events(service, "call.ended", placed["call_sid"])
        assert ended["data"]["status"] == "failed"
        row = await service.services.pool.fetchrow(
            "SELECT status, agent_id, to_number FROM voice_calls WHERE call_sid = $1", placed["call_sid"]
        )
        assert row is not None and (row["status"], str(row["agent_id"]), row["to_number"]) == (
            "failed",
            agent["id"],
            CALLER,
        )
        # A status of a call nobody placed with that URL is still ignored.
        stranger = "CA" + uuid.uuid4().hex
        assert (await call(service, f"{VOICE}/status", stranger, status="failed")).status == 200
        assert (
            await service.services.pool.fetchval("SELECT count(*) FROM voice_calls WHERE call_sid = $1", stranger) == 0
        )
        await desktop.close()
