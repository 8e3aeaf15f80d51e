"""An agent's SMS reply asks Twilio for its status callbacks; the final one is told to other systems once:
`message.delivered`, or `message.undelivered` with Twilio's error code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from contactcenter.settings import Settings
from tests.e2e.test_supervisors import until
from tests.running import AgentDesktop, FakeTwilioApi, RunningService, run_service

PUBLIC_URL = "https://cc.example.com"
STATUS = "/channels/twilio/sms/status"
CUSTOMER = "+14155550134"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events"


@pytest.fixture
async def public_service(service_settings: Settings) -> AsyncIterator[RunningService]:
    async with run_service(service_settings.model_copy(update={"public_url": PUBLIC_URL})) as running:
        yield running


async def _accepted(service: RunningService) -> tuple[AgentDesktop, str]:
    """An agent's desktop holding a customer's SMS conversation, and the conversation's id."""
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    await service.post_sms(sender=CUSTOMER, body="Is my car ready?")
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    conversation_id: str = offer["reservation"]["conversation_id"]
    return desktop, conversation_id


async def _replied(service: RunningService, text: str) -> dict[str, Any]:
    """An agent's reply to a customer's SMS: the `replied` frame (its interaction's provider_id is the SID)."""
    desktop, conversation_id = await _accepted(service)
    replied = await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": text}, "replied")
    await desktop.close()
    return replied


def _status_form(service: RunningService, sid: str, status: str, **more: str) -> dict[str, str]:
    """What Twilio posts to a message's StatusCallback."""
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": service.settings.twilio_account_sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "From": "+15005550006",
        "To": CUSTOMER,
        "ApiVersion": "2010-04-01",
        **more,
    }


async def _events(service: RunningService, *names: str, count: int = 1) -> list[dict[str, Any]]:
    """The events of these types, once `count` are in the log, read as an integrator reads them (the log's pages,
    which show an event once the relay numbered it), each checked against its JSON Schema."""
    wanted: list[dict[str, Any]] = []

    async def logged() -> bool:
        nonlocal wanted
        events: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:
            url = f"{service.base_url}/api/v1/events?after={after}&limit=1000"
            async with service.http.get(url, headers=service.admin_headers()) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            events += page["events"]
            after = page["next_after"]
        wanted = [e for e in events if e["type"].removeprefix("org.contactcenter.") in names]
        return len(wanted) >= count

    await until(logged, f"{count} of {names} in the log")
    for event in wanted:
        name = event["type"].removeprefix("org.contactcenter.")
        schema = json.loads((SCHEMAS / name / "v1.json").read_text())
        jsonschema.validate(event["data"], schema)
    return wanted


async def _written(service: RunningService, *names: str) -> int:
    """How many events of these types are written, numbered by the relay or not."""
    async with service.services.pool.acquire() as conn:
        found: int = await conn.fetchval("SELECT count(*) FROM events WHERE type = any($1::text[])", list(names))
        return found


async def test_a_reply_delivered_is_told_once_whatever_twilio_repeats(
    public_service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    replied = await _replied(public_service, "Yes, come by at five.")
    [sent] = fake_twilio.sent
    assert sent["StatusCallback"] == PUBLIC_URL + STATUS  # Twilio is asked to tell us
    sid = replied["interaction"]["provider_id"]
    for status in ("queued", "sent", "delivered", "delivered"):  # each step, and the last one again
        response = await public_service.post_twilio(STATUS, _status_form(public_service, sid, status))
        assert response.status == 200, await response.text()
        assert response.content_type == "text/xml"  # empty TwiML, as every Twilio webhook is answered
    # A late word after the final one changes nothing.
    response = await public_service.post_twilio(STATUS, _status_form(public_service, sid, "failed", ErrorCode="30008"))
    assert response.status == 200
    [delivered] = await _events(public_service, "message.delivered", "message.undelivered")
    [sent_event] = await _events(public_service, "message.sent")
    assert await _written(public_service, "message.delivered", "message.undelivered") == 1
    assert delivered["type"] == "org.contactcenter.message.delivered"
    assert delivered["partitionkey"] == sent_event["partitionkey"]  # the conversation's order
    assert int(delivered["id"]) > int(sent_event["id"])
    assert {k: delivered["data"][k] for k in ("interaction_id", "conversation_id", "client_id", "channel")} == {
        k: sent_event["data"][k] for k in ("interaction_id", "conversation_id", "client_id", "channel")
    }


async def test_a_reply_the_carrier_refused_is_told_undelivered_with_twilios_error_code(
    public_service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    replied = await _replied(public_service, "Your invoice is attached.")
    sid = replied["interaction"]["provider_id"]
    form = _status_form(public_service, sid, "undelivered", ErrorCode="30003")
    assert (await public_service.post_twilio(STATUS, form)).status == 200
    [undelivered] = await _events(public_service, "message.delivered", "message.undelivered")
    assert undelivered["type"] == "org.contactcenter.message.undelivered"
    data = undelivered["data"]
    assert (data["interaction_id"], data["status"], data["error_code"]) == (
        replied["interaction"]["id"],
        "undelivered",
        "30003",
    )


async def test_a_report_that_comes_before_its_reply_is_stored_is_told_once_the_reply_is(
    public_service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    """Twilio's callback may overtake the REST answer that names the message: the report waits for it."""
    desktop, conversation_id = await _accepted(public_service)
    early: list[asyncio.Task[Any]] = []

    async def report_first(form: dict[str, str], sid: str) -> None:
        # Twilio calls back before it answers our REST call: the reply is not stored yet.
        status_form = _status_form(public_service, sid, "delivered")
        early.append(asyncio.create_task(public_service.post_twilio(STATUS, status_form)))
        await asyncio.sleep(0.3)

    fake_twilio.before_message_answered = report_first
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Yes."}, "replied")
    await desktop.close()
    [response] = await asyncio.gather(*early)
    assert response.status == 200
    [delivered] = await _events(public_service, "message.delivered")
    assert delivered["data"]["conversation_id"] == conversation_id


async def test_a_report_for_a_message_not_stored_in_time_is_kept_and_told_when_twilio_repeats_it(
    public_service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    desktop, conversation_id = await _accepted(public_service)
    sids: list[str] = []

    async def report_and_wait(form: dict[str, str], sid: str) -> None:
        # The whole callback is answered before the REST answer: nothing to tell yet, but it is kept (a 200).
        sids.append(sid)
        response = await public_service.post_twilio(STATUS, _status_form(public_service, sid, "delivered"))
        assert response.status == 200

    fake_twilio.before_message_answered = report_and_wait
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "Yes."}, "replied")
    await desktop.close()
    assert await _written(public_service, "message.delivered") == 0
    response = await public_service.post_twilio(STATUS, _status_form(public_service, sids[0], "delivered"))
    assert response.status == 200
    [delivered] = await _events(public_service, "message.delivered")
    assert delivered["data"]["conversation_id"] == conversation_id


async def test_without_a_public_url_twilio_is_asked_for_no_callback(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await _replied(service, "Yes.")
    [sent] = fake_twilio.sent
    assert "StatusCallback" not in sent


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"MessageSid": ""}, 400, "MessageSid"),
        ({"MessageSid": "SM\x00abc"}, 400, "MessageSid"),
        ({"MessageSid": "SM" + "a" * 199}, 400, "MessageSid"),
        ({"MessageStatus": ""}, 400, "MessageStatus"),
        ({"MessageStatus": "deliv\u0085ered"}, 400, "MessageStatus"),
        ({"ErrorCode": "3\x000"}, 400, "ErrorCode"),
    ],
)
async def test_a_callback_twilio_could_not_have_sent_is_refused_naming_the_field(
    public_service: RunningService, change: dict[str, str], code: int, field: str
) -> None:
    form = _status_form(public_service, "SM" + "0" * 32, "delivered") | change
    response = await public_service.post_twilio(STATUS, form)
    assert response.status == code
    assert (await response.json())["error"]["field"] == field


async def test_an_unsigned_callback_is_refused_and_nothing_is_kept(
    public_service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    replied = await _replied(public_service, "Yes.")
    form = _status_form(public_service, replied["interaction"]["provider_id"], "delivered")
    assert (await public_service.post_twilio(STATUS, form, signature="bm90IGEgc2lnbmF0dXJl")).status == 403
    async with public_service.http.post(f"{public_service.base_url}{STATUS}", data=form) as response:
        assert response.status == 403
    assert await _written(public_service, "message.delivered", "message.undelivered") == 0
