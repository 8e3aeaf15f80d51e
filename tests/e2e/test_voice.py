"""Phone calls through Twilio's signed voice webhooks, on the real PostgreSQL, Redis and RabbitMQ: the menu, the
queue and its announcements, the screen pop, the connection through Twilio's REST API (a local stand-in), an
abandon, and the status callbacks that only move a call forward."""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import jwt

from tests.e2e.test_events import read_log
from tests.running import (
    TWILIO_API_KEY_SECRET,
    TWILIO_API_KEY_SID,
    TWILIO_TWIML_APP_SID,
    FakeTwilioApi,
    RunningService,
)

NUMBER = "+15005550006"
CALLER = "+14155550134"
VOICE = "/channels/twilio/voice"
MENU = {
    "greeting": "Welcome to Example Motors.",
    "prompt": "For sales press 1 or say sales. For service press 2 or say service.",
    "options": [
        {"digit": "1", "words": ["sales", "buy"], "queue": "sales"},
        {"digit": "2", "words": ["service", "repair"], "queue": "service"},
    ],
    "max_wait_seconds": 120,
}


def twiml(text: str) -> list[ET.Element]:
    """The verbs of a TwiML answer, in order."""
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return list(root)


def path_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path


async def put_menu(service: RunningService, menu: dict[str, Any], number: str = NUMBER) -> None:
    url = f"{service.base_url}/api/v1/voice/numbers/{urllib.parse.quote(number)}"
    async with service.http.put(url, json=menu, headers=service.admin_headers()) as response:
        assert response.status == 200, await response.text()


async def call(service: RunningService, path: str, call_sid: str, **more: str) -> aiohttp.ClientResponse:
    return await service.post_twilio(path, service.call_form(call_sid, CALLER, **more))


async def call_events(service: RunningService, kind: str, call_sid: str, count: int = 1) -> list[dict[str, Any]]:
    """The call's events of `kind` in the log, once `count` of them are there (the relay publishes them)."""
    async with asyncio.timeout(15):
        while True:
            events = [
                event
                for event in await read_log(service, limit=500)
                if event["type"] == f"org.contactcenter.{kind}" and event["subject"] == call_sid
            ]
            if len(events) >= count:
                return events
            await asyncio.sleep(0.05)


async def card_of(service: RunningService, phone: str) -> dict[str, Any]:
    """The caller's card, once the router has stored its first contact."""
    async with asyncio.timeout(15):
        while True:
            async with service.http.get(
                f"{service.base_url}/api/v1/clients/lookup", params={"phone": phone}, headers=service.admin_headers()
            ) as response:
                if response.status == 200:
                    card: dict[str, Any] = await response.json()
                    return card
            await asyncio.sleep(0.05)


async def call_to_queue(service: RunningService, call_sid: str, digit: str) -> list[ET.Element]:
    answer = await call(service, VOICE, call_sid)
    assert answer.status == 200
    chosen = await call(service, f"{VOICE}/menu", call_sid, status="in-progress", Digits=digit)
    assert chosen.status == 200
    return twiml(await chosen.text())


async def test_a_call_chooses_its_queue_in_the_menu_pops_the_card_and_is_connected_when_the_agent_accepts(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["voice", "sms"])
    await service.create_queue("service", ["voice"])
    await put_menu(service, MENU)
    seller = await service.available_agent("Sam", ("sales",))
    mechanic = await service.available_agent("Ann", ("service",))
    sid = "CA" + uuid.uuid4().hex

    answer = await call(service, VOICE, sid)
    assert answer.status == 200 and answer.content_type == "text/xml"
    say, gather, redirect = twiml(await answer.text())
    assert (say.tag, say.text) == ("Say", MENU["greeting"])
    assert gather.tag == "Gather"
    assert path_of(gather.attrib["action"]) == f"{VOICE}/menu"
    assert gather.attrib["input"] == "dtmf speech" and gather.attrib["numDigits"] == "1"
    assert gather.attrib["hints"] == "sales, buy, service, repair"
    assert [(verb.tag, verb.text) for verb in gather] == [("Say", MENU["prompt"])]
    assert (redirect.tag, path_of(redirect.text or "")) == ("Redirect", VOICE)

    # A key that is no choice: the menu again, nothing published.
    again = await call(service, f"{VOICE}/menu", sid, status="in-progress", Digits="7")
    sorry, gather_again, _ = twiml(await again.text())
    assert sorry.tag == "Say" and "not one of the choices" in (sorry.text or "")
    assert gather_again.tag == "Gather"

    (enqueue,) = await call_to_queue(service, sid, "2")
    assert (enqueue.tag, enqueue.text) == ("Enqueue", "service")
    wait_url = urllib.parse.urlsplit(enqueue.attrib["waitUrl"])
    assert wait_url.path == f"{VOICE}/wait" and urllib.parse.parse_qs(wait_url.query) == {"max_wait": ["120"]}
    assert path_of(enqueue.attrib["action"]) == f"{VOICE}/queue"

    # The screen pop, while the caller waits: the service agent, not the sales one.
    offer = await mechanic.receive("offer")
    assert offer["reservation"]["queue"] == "service"
    interaction = offer["reservation"]["interaction"]
    assert (interaction["channel"], interaction["provider_id"], interaction["from_address"]) == ("voice", sid, CALLER)
    assert offer["card"]["identities"] == [
        {
            "kind": "phone",
            "value": CALLER,
            "raw": CALLER,
            "verified": True,
            "source": "contact",
            "flags": [],
            "shared": False,
        }
    ]

    # The wait URL announces the caller's place, then holds: Twilio plays it again when it ends.
    waiting = await call(service, f"{VOICE}/wait?max_wait=120", sid, QueuePosition="3", QueueTime="12")
    listen, pause = twiml(await waiting.text())
    assert listen.tag == "Gather" and "number 3 in line" in (listen[0].text or "")
    assert pause.tag == "Pause"

    assert fake_twilio.calls == []
    accepted = await mechanic.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert accepted["conversation_id"] == offer["reservation"]["conversation_id"]
    (connect,) = fake_twilio.calls
    assert connect["CallSid"] == sid
    (dial,) = twiml(connect["Twiml"])
    assert dial.tag == "Dial" and [(target.tag, target.text) for target in dial] == [
        ("Client", f"agent-{mechanic.agent_id}")
    ]
    # The same accept again (a desktop's retry) connects nothing twice.
    await mechanic.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert len(fake_twilio.calls) == 1
    (connected,) = await call_events(service, "call.connected", sid)
    assert connected["data"] == {"call_sid": sid, "agent_id": mechanic.agent_id, "queue": "service"}

    # The queue's callback of the redirect, then the call's end with its duration.
    await call(service, f"{VOICE}/queue", sid, status="in-progress", QueueResult="redirected", QueueTime="14")
    await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="95")
    (ended,) = await call_events(service, "call.ended", sid)
    assert ended["data"] == {
        "call_sid": sid,
        "status": "completed",
        "agent_id": mechanic.agent_id,
        "duration_seconds": 95,
    }
    await seller.close()
    await mechanic.close()


async def test_a_caller_who_hangs_up_while_offered_is_abandoned_and_the_agent_is_freed(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    desktop = await service.available_agent("Ann", ("sales",))
    sid = "CA" + uuid.uuid4().hex
    await call_to_queue(service, sid, "1")
    offer = await desktop.receive("offer")

    # The queue's own callback says the caller hung up; Twilio's status callback follows, twice.
    assert (await call(service, f"{VOICE}/queue", sid, status="completed", QueueResult="hangup")).status == 200
    revoked = await desktop.receive("revoked")
    assert revoked["reservation_id"] == offer["reservation"]["id"] and revoked["reason"] == "withdrawn"
    for _ in range(2):
        assert (await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="20")).status == 200
    (abandoned,) = await call_events(service, "call.abandoned", sid)
    assert abandoned["data"]["queue"] == "sales" and abandoned["data"]["waited_seconds"] >= 0
    interaction_id = offer["reservation"]["interaction"]["id"]
    (given_up,) = await call_events(service, "interaction.abandoned", interaction_id)
    assert given_up["data"]["offered_to"] == desktop.agent_id
    assert given_up["data"]["conversation_id"] == offer["reservation"]["conversation_id"]
    # Its conversation closed, and the event stream says so: no agent, abandoned.
    conversation_id = offer["reservation"]["conversation_id"]
    (closed,) = await call_events(service, "conversation.closed", conversation_id)
    assert closed["data"]["agent_id"] is None and closed["data"]["reason"] == "abandoned"
    assert closed["data"]["client_id"] == offer["card"]["client"]["id"] and closed["data"]["channel"] == "voice"
    state = await service.services.pool.fetchval("SELECT state FROM conversations WHERE id = $1", conversation_id)
    assert state == "closed"
    refused = await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "error")
    assert refused["error"]["field"] == "reservation_id"
    assert fake_twilio.calls == []

    # Freed: the next caller's call is offered to the same agent.
    other = "CA" + uuid.uuid4().hex
    await service.post_twilio(VOICE, service.call_form(other, "+14155550999"))
    await service.post_twilio(f"{VOICE}/menu", service.call_form(other, "+14155550999", Digits="1"))
    assert (await desktop.receive("offer"))["reservation"]["interaction"]["provider_id"] == other
    (ended,) = await call_events(service, "call.ended", sid)
    assert ended["data"]["agent_id"] is None
    await desktop.close()


async def test_a_storm_of_late_repeated_and_out_of_order_statuses_moves_a_call_forward_once(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["voice"])
    sid = "CA" + uuid.uuid4().hex
    (enqueue,) = twiml(await (await call(service, VOICE, sid)).text())  # no menu for the number: the queue
    assert enqueue.tag == "Enqueue"
    statuses = ["completed"] * 5 + ["ringing", "in-progress", "busy", "completed"]
    answers = await asyncio.gather(
        *(call(service, f"{VOICE}/status", sid, status=status, CallDuration="3") for status in statuses)
    )
    assert [answer.status for answer in answers] == [200] * len(statuses)
    await call_events(service, "call.ended", sid)
    await call_events(service, "call.abandoned", sid)
    await asyncio.sleep(0.3)  # nothing more comes: the first final status alone moved the call
    assert len(await call_events(service, "call.ended", sid)) == 1
    assert len(await call_events(service, "call.abandoned", sid)) == 1


async def test_a_status_for_an_unknown_call_is_answered_200_and_ignored(service: RunningService) -> None:
    sid = "CA" + uuid.uuid4().hex
    answer = await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="3")
    assert answer.status == 200
    assert twiml(await answer.text()) == []


async def test_an_unsigned_call_is_403_and_one_without_callsid_is_400_naming_it(service: RunningService) -> None:
    form = service.call_form("CA" + uuid.uuid4().hex, CALLER)
    for path in (VOICE, f"{VOICE}/menu", f"{VOICE}/status", f"{VOICE}/queue", f"{VOICE}/wait"):
        unsigned = await service.post_twilio(path, form, signature="bm90IGEgc2lnbmF0dXJl")
        assert unsigned.status == 403, path
        without = await service.post_twilio(path, {key: value for key, value in form.items() if key != "CallSid"})
        assert without.status == 400, path
        body = await without.json()
        assert body["error"]["field"] == "CallSid"


async def test_a_call_outside_opening_hours_leaves_a_voicemail_that_an_agent_is_offered(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["voice"])
    await put_menu(service, {**MENU, "hours": {"1": []}})  # open on no day
    desktop = await service.available_agent("Ann", ("sales",))
    sid = "CA" + uuid.uuid4().hex

    say, record = twiml(await (await call(service, VOICE, sid)).text())
    assert say.tag == "Say" and "closed" in (say.text or "")
    assert record.tag == "Record" and path_of(record.attrib["recordingStatusCallback"]) == f"{VOICE}/recording"
    recording = "RE" + uuid.uuid4().hex
    url = f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{recording}"
    form = {
        "AccountSid": service.settings.twilio_account_sid,
        "CallSid": sid,
        "RecordingSid": recording,
        "RecordingUrl": url,
        "RecordingStatus": "completed",
        "RecordingDuration": "14",
        "RecordingChannels": "1",
        "RecordingStartTime": "Mon, 30 Nov 2026 15:00:00 +0000",
        "RecordingSource": "RecordVerb",
        "ErrorCode": "0",
    }
    for _ in range(2):  # a retry is stored once
        assert (await service.post_twilio(f"{VOICE}/recording", form)).status == 200
    offer = await desktop.receive("offer")
    interaction = offer["reservation"]["interaction"]
    assert interaction["provider_id"] == recording and url in interaction["body"]
    assert [entry["body"] for entry in offer["card"]["timeline"]] == [interaction["body"]]
    goodbye = twiml(await (await call(service, f"{VOICE}/recorded", sid, RecordingUrl=url)).text())
    assert [verb.tag for verb in goodbye] == ["Say", "Hangup"]
    await call_events(service, "voicemail.received", sid)

    # The transcription, when Twilio sends one, reaches the agent who took the voicemail, and the card.
    assert record.attrib["transcribe"] == "true"
    assert path_of(record.attrib["transcribeCallback"]) == f"{VOICE}/transcription"
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    transcription = {
        **form,
        "TranscriptionSid": "TR" + uuid.uuid4().hex,
        "TranscriptionText": "Hi, my car makes a noise\x00 when braking.",
        "TranscriptionStatus": "completed",
        "TranscriptionUrl": f"{url}/Transcriptions/TR1",
        "TranscriptionType": "fast",
        "From": CALLER,
        "To": NUMBER,
    }
    assert (await service.post_twilio(f"{VOICE}/transcription", transcription)).status == 200
    message = await desktop.receive("message")
    assert message["conversation_id"] == offer["reservation"]["conversation_id"]
    assert message["interaction"]["body"] == "Voicemail transcription: Hi, my car makes a noise\ufffd when braking."
    await desktop.close()


async def test_a_caller_who_never_chooses_hears_the_menu_three_times_then_waits_in_the_oldest_voice_queue(
    service: RunningService,
) -> None:
    await service.create_queue("questions", ["voice"])
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    desktop = await service.available_agent("Ann", ("questions",))
    sid = "CA" + uuid.uuid4().hex
    say, _, redirect = twiml(await (await call(service, VOICE, sid)).text())
    assert say.text == MENU["greeting"]
    # Silence: Twilio follows the redirect, the next round (without the greeting), then a key that is no option.
    second = urllib.parse.urlsplit(redirect.text or "")
    assert urllib.parse.parse_qs(second.query) == {"round": ["2"]}
    gather2, _ = twiml(await (await call(service, f"{second.path}?{second.query}", sid)).text())
    assert gather2.tag == "Gather" and urllib.parse.parse_qs(urllib.parse.urlsplit(gather2.attrib["action"]).query) == {
        "round": ["2"]
    }
    sorry, _, _ = twiml(await (await call(service, f"{VOICE}/menu?round=2", sid, Digits="9")).text())
    assert sorry.tag == "Say" and "not one of the choices" in (sorry.text or "")
    (enqueue,) = twiml(await (await call(service, f"{VOICE}/menu?round=3", sid, Digits="9")).text())
    assert enqueue.tag == "Enqueue"
    offer = await desktop.receive("offer")
    assert offer["reservation"]["queue"] == "questions"
    assert offer["reservation"]["interaction"]["provider_id"] == sid
    bad = await service.post_twilio(f"{VOICE}?round=x", service.call_form("CA" + uuid.uuid4().hex, "+14155550177"))
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "round"
    await desktop.close()


async def test_a_known_caller_with_an_open_conversation_skips_the_menu(service: RunningService) -> None:
    await service.create_queue("sales", ["voice", "sms"])
    await service.create_queue("service", ["voice", "sms"])
    await put_menu(service, MENU)
    await service.post_sms(sender=CALLER, body="Is my car ready?")  # opens a conversation in sales
    await card_of(service, CALLER)

    (enqueue,) = twiml(await (await call(service, VOICE, "CA" + uuid.uuid4().hex)).text())
    assert (enqueue.tag, enqueue.text) == ("Enqueue", "sales")


async def test_the_waiting_caller_past_the_longest_wait_leaves_for_voicemail(service: RunningService) -> None:
    await service.create_queue("sales", ["voice"])
    sid = "CA" + uuid.uuid4().hex
    await call(service, VOICE, sid)
    card = await card_of(service, CALLER)  # the call's contact is stored and waits
    (leave,) = twiml(await (await call(service, f"{VOICE}/wait?max_wait=60", sid, QueueTime="61")).text())
    assert leave.tag == "Leave"
    say, record = twiml(await (await call(service, f"{VOICE}/queue", sid, QueueResult="leave")).text())
    assert (say.tag, record.tag) == ("Say", "Record")
    # Hanging up after the voicemail is no abandon.
    await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="40")
    await call_events(service, "call.ended", sid)
    assert not [e for e in await read_log(service, limit=500) if e["type"].endswith("abandoned")]
    # The call's conversation closed as withdrawn (it left for voicemail), in the stream as in the database.
    (conversation_id,) = [entry["conversation_id"] for entry in card["timeline"] if entry.get("conversation_id")]
    (closed,) = await call_events(service, "conversation.closed", conversation_id)
    assert closed["data"]["agent_id"] is None and closed["data"]["reason"] == "withdrawn"


async def test_an_agent_accepting_while_twilio_is_away_hears_it_and_may_accept_again(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["voice"])
    desktop = await service.available_agent("Ann", ("sales",))
    sid = "CA" + uuid.uuid4().hex
    await call(service, VOICE, sid)
    offer = await desktop.receive("offer")
    fake_twilio.calls_status = 500
    refused = await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "error")
    assert refused["error"]["code"] == "unavailable"
    fake_twilio.calls_status = 200
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert [connect["CallSid"] for connect in fake_twilio.calls] == [sid]
    await desktop.close()


async def test_an_agent_gets_a_voice_access_token_naming_the_identity_its_calls_ring(service: RunningService) -> None:
    await service.create_queue("sales", ["voice"])
    agent = await service.create_agent("Ann", ["sales"])
    url = f"{service.base_url}/api/v1/voice/token"
    async with service.http.post(url, headers={"Authorization": f"Bearer {agent['token']}"}) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    claims = jwt.decode(body["token"], TWILIO_API_KEY_SECRET, algorithms=["HS256"])
    assert claims["iss"] == TWILIO_API_KEY_SID and claims["sub"] == service.settings.twilio_account_sid
    assert claims["grants"]["identity"] == body["identity"] == f"agent-{agent['id']}"
    assert claims["grants"]["voice"]["incoming"] == {"allow": True}
    assert claims["grants"]["voice"]["outgoing"]["application_sid"] == TWILIO_TWIML_APP_SID
    assert claims["exp"] - claims["nbf"] == body["expires_in"] == service.settings.voice_token_seconds
    async with service.http.post(url) as response:
        assert response.status == 401
    async with service.http.post(url, headers=service.admin_headers()) as response:
        assert response.status == 401  # the admin takes no calls


async def test_an_agent_whose_endpoint_is_a_phone_number_is_dialled_there(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["voice"])
    desktop = await service.available_agent("Ann", ("sales",))
    url = f"{service.base_url}/api/v1/voice/agents/{desktop.agent_id}/endpoint"
    body = {"kind": "phone", "address": "(415) 555-0100"}
    async with service.http.put(url, json=body, headers=service.admin_headers()) as response:
        assert response.status == 200
        assert await response.json() == {"kind": "phone", "address": "+14155550100"}
    sid = "CA" + uuid.uuid4().hex
    await call(service, VOICE, sid)
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    ((dial,),) = [twiml(connect["Twiml"]) for connect in fake_twilio.calls]
    assert [(target.tag, target.text) for target in dial] == [("Number", "+14155550100")]
    await desktop.close()


async def test_bad_endpoints_and_menus_are_400_naming_the_field_and_unknown_ones_404(service: RunningService) -> None:
    headers = service.admin_headers()
    unknown = f"{service.base_url}/api/v1/voice/agents/{uuid.uuid4()}/endpoint"
    async with service.http.put(unknown, json={"kind": "sip", "address": "sip:ann@example.com"}, headers=headers) as r:
        assert r.status == 404 and (await r.json())["error"]["field"] == "agent_id"
    for body, field in (
        ({"kind": "fax", "address": "x"}, "kind"),
        ({"kind": "sip", "address": "sip:\x00@example.com"}, "address"),
    ):
        async with service.http.put(unknown, json=body, headers=headers) as r:
            assert r.status == 400 and (await r.json())["error"]["field"] == field
    menus = f"{service.base_url}/api/v1/voice/numbers"
    for number, menu, field in (
        ("not-a-number", MENU, "number"),
        (NUMBER, {**MENU, "time_zone": "Mars/Olympus"}, "time_zone"),
        (NUMBER, {**MENU, "hours": {"1": [["17:00", "09:00"]]}}, "hours"),
        (NUMBER, {**MENU, "hours": {"8": [["09:00", "17:00"]]}}, "hours"),
        (NUMBER, {**MENU, "options": [{"digit": "12", "queue": "sales"}]}, "options.0.digit"),
        (NUMBER, {**MENU, "greeting": "a\x00b"}, "greeting"),
        (NUMBER, {**MENU, "surprise": 1}, "surprise"),
    ):
        async with service.http.put(f"{menus}/{urllib.parse.quote(number)}", json=menu, headers=headers) as r:
            assert r.status == 400, (menu, await r.text())
            assert (await r.json())["error"]["field"] == field
    async with service.http.put(
        f"{menus}/{urllib.parse.quote(NUMBER)}",
        json={**MENU, "options": [{"digit": "1", "queue": "a"}, {"digit": "1", "queue": "b"}]},
        headers=headers,
    ) as r:
        assert r.status == 400
    await put_menu(service, MENU)
    async with service.http.get(f"{menus}/{urllib.parse.quote(NUMBER)}", headers=headers) as r:
        assert r.status == 200 and (await r.json())["options"][1]["queue"] == "service"
    await service.create_queue("sales", ["voice"])
    agent = await service.create_agent("Bo", ["sales"])
    async with service.http.get(
        f"{menus}/{urllib.parse.quote(NUMBER)}", headers={"Authorization": f"Bearer {agent['token']}"}
    ) as r:
        assert r.status == 403
    async with service.http.delete(f"{menus}/{urllib.parse.quote(NUMBER)}", headers=headers) as r:
        assert r.status == 204
    async with service.http.delete(f"{menus}/{urllib.parse.quote(NUMBER)}", headers=headers) as r:
        assert r.status == 404


async def test_a_call_with_a_control_character_in_an_identifier_is_400_naming_it_and_nothing_is_published(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["voice"])
    desktop = await service.available_agent("Ann", ("sales",))
    for field, value in (("CallSid", "CA\x00x"), ("From", "+1415555\x000134"), ("From", "not a number")):
        form = service.call_form("CA" + uuid.uuid4().hex, CALLER)
        form[field] = value
        answer = await service.post_twilio(VOICE, form)
        assert answer.status == 400, (field, await answer.text())
        assert (await answer.json())["error"]["field"] == field
    for field, value in (("QueuePosition", "-1"), ("QueueTime", "١٢")):
        form = service.call_form("CA" + uuid.uuid4().hex, CALLER, **{field: value})
        answer = await service.post_twilio(f"{VOICE}/wait", form)
        assert answer.status == 400 and (await answer.json())["error"]["field"] == field
    # Odd code points in the words a caller said are no choice, not an error.
    sid = "CA" + uuid.uuid4().hex
    await put_menu(service, MENU)
    await call(service, VOICE, sid)
    odd = await call(service, f"{VOICE}/menu", sid, SpeechResult="\u202e\ufffe sa\u0301les")
    assert odd.status == 200 and twiml(await odd.text())[0].tag == "Say"
    # Nothing above reached the agent: the next call is the first offer.
    good = "CA" + uuid.uuid4().hex
    await call(service, VOICE, good)
    await call(service, f"{VOICE}/menu", good, Digits="1")
    assert (await desktop.receive("offer"))["reservation"]["interaction"]["provider_id"] == good
    await desktop.close()


async def test_an_agent_calls_a_client_from_its_card_and_the_call_is_on_the_timeline(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["voice", "sms"])
    await put_menu(service, MENU)
    agent = await service.create_agent("Ann", ["sales"])
    await service.post_sms(sender=CALLER, body="Please call me back")
    card = await card_of(service, CALLER)
    url = f"{service.base_url}/api/v1/voice/calls"
    headers = {"Authorization": f"Bearer {agent['token']}"}

    async with service.http.post(url, json={"client_id": card["client"]["id"]}, headers=headers) as response:
        assert response.status == 201, await response.text()
        placed = await response.json()
    assert (placed["to"], placed["from_number"]) == (CALLER, NUMBER)
    (request,) = fake_twilio.placed
    assert request["CallSid"] == placed["call_sid"]
    assert (request["To"], request["From"]) == (f"client:agent-{agent['id']}", NUMBER)
    (dial,) = twiml(request["Twiml"])
    assert dial.attrib["callerId"] == NUMBER and [(n.tag, n.text) for n in dial] == [("Number", CALLER)]
    timeline = (await card_of(service, CALLER))["timeline"]
    assert (timeline[0]["id"], timeline[0]["channel"], timeline[0]["direction"]) == (
        placed["interaction_id"],
        "voice",
        "outbound",
    )
    (event,) = await call_events(service, "call.placed", placed["call_sid"])
    assert event["data"]["client_id"] == card["client"]["id"] and event["data"]["agent_id"] == agent["id"]
    # Its status callbacks end it like any call's, never as an abandon.
    await call(service, f"{VOICE}/status", placed["call_sid"], status="completed", CallDuration="61")
    (ended,) = await call_events(service, "call.ended", placed["call_sid"])
    assert ended["data"]["duration_seconds"] == 61

    # Only the card's own numbers, only an agent, only a client that exists.
    for body, status, field in (
        ({"client_id": card["client"]["id"], "to": "+14155550999"}, 400, "to"),
        ({"client_id": str(uuid.uuid4())}, 404, "client_id"),
        ({"client_id": card["client"]["id"], "from_number": "nope"}, 400, "from_number"),
    ):
        async with service.http.post(url, json=body, headers=headers) as response:
            assert response.status == status and (await response.json())["error"]["field"] == field
    async with service.http.post(url, json={"client_id": card["client"]["id"]}, headers=service.admin_headers()) as r:
        assert r.status == 401
    assert len(fake_twilio.placed) == 1


async def test_a_caller_who_asks_to_be_called_back_keeps_its_place_and_the_agent_who_accepts_calls_back(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    sid, earlier = "CA" + uuid.uuid4().hex, "CA" + uuid.uuid4().hex
    await service.post_twilio(VOICE, service.call_form(earlier, "+14155550111"))
    await service.post_twilio(f"{VOICE}/menu", service.call_form(earlier, "+14155550111", Digits="1"))
    await call_to_queue(service, sid, "1")
    # The two calls' contacts are stored (in that order) before the caller presses the key.
    await card_of(service, "+14155550111")
    await card_of(service, CALLER)

    (listen, _) = twiml(await (await call(service, f"{VOICE}/wait?max_wait=120", sid, QueuePosition="2")).text())
    assert "press pound" in (listen[0].text or "")
    say, hangup = twiml(await (await call(service, f"{VOICE}/leave?max_wait=120", sid, Digits="#")).text())
    assert say.tag == "Say" and "call you back" in (say.text or "") and hangup.tag == "Hangup"
    await call(service, f"{VOICE}/queue", sid, status="completed", QueueResult="hangup")
    await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="30")
    await call_events(service, "call.ended", sid)

    # Its place kept: the earlier caller first, then the callback, with the request on its card.
    desktop = await service.available_agent("Ann", ("sales",))
    first = await desktop.receive("offer")
    assert first["reservation"]["interaction"]["provider_id"] == earlier
    await desktop.command({"type": "accept", "reservation_id": first["reservation"]["id"]}, "accepted")
    await desktop.command({"type": "complete", "conversation_id": first["reservation"]["conversation_id"]}, "completed")
    # The earlier call occupies the agent until it ends.
    await service.post_twilio(f"{VOICE}/status", service.call_form(earlier, "+14155550111", status="completed"))
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["provider_id"] == sid
    assert any("Callback requested" in entry["body"] for entry in offer["card"]["timeline"])
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    (placed,) = fake_twilio.placed
    assert (placed["To"], placed["From"]) == (f"client:agent-{desktop.agent_id}", NUMBER)
    (dial,) = twiml(placed["Twiml"])
    assert [(n.tag, n.text) for n in dial] == [("Number", CALLER)]
    (connected,) = await call_events(service, "call.connected", sid)
    assert connected["data"]["agent_id"] == desktop.agent_id
    assert not [e for e in await read_log(service, limit=500) if e["type"].endswith("abandoned")]
    await desktop.close()


async def test_a_caller_whose_call_an_agent_holds_is_rung_through_to_that_agent(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    desktop = await service.available_agent("Ann", ("sales",))
    first = "CA" + uuid.uuid4().hex
    await call_to_queue(service, first, "1")
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    await call(service, f"{VOICE}/status", first, status="completed", CallDuration="50")

    # The caller calls again while Ann still holds the conversation: no menu, straight to Ann.
    again = "CA" + uuid.uuid4().hex
    (dial,) = twiml(await (await call(service, VOICE, again)).text())
    assert dial.tag == "Dial" and [(t.tag, t.text) for t in dial] == [("Client", f"agent-{desktop.agent_id}")]
    message = await desktop.receive("message")
    assert message["conversation_id"] == offer["reservation"]["conversation_id"]
    assert message["interaction"]["provider_id"] == again
    (connected,) = await call_events(service, "call.connected", again)
    assert connected["data"]["agent_id"] == desktop.agent_id
    await desktop.close()


async def test_a_menu_answer_the_broker_does_not_confirm_gets_twilio_a_503_and_no_queue(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["voice"])
    await put_menu(service, MENU)
    sid = "CA" + uuid.uuid4().hex
    assert (await call(service, VOICE, sid)).status == 200
    await service.services.bus.close()
    refused = await call(service, f"{VOICE}/menu", sid, Digits="1")
    # Twilio retries the same answer; the caller never hears <Enqueue> for a contact the bus does not hold.
    assert refused.status == 503 and (await refused.json())["error"]["code"] == "unavailable"
