"""Bad input at each edge gets a clear answer: 403 for Twilio signatures, 400 naming the field, 401 for
unknown tokens, an error message on the agent socket — never a 500, never a dropped connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from contactcenter.host.app import ADMISSION
from contactcenter.settings import Settings
from contactcenter.store.cards import Cards
from schema import ClientCard, IdentityKind
from tests.running import TWILIO_AUTH_TOKEN, RunningService, run_service


async def test_unsigned_sms_webhook_is_refused(service: RunningService) -> None:
    url = f"{service.base_url}/channels/twilio/sms"
    async with service.http.post(url, data={"From": "+14155550134", "MessageSid": "SM1"}) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"


async def test_wrongly_signed_sms_webhook_is_refused(service: RunningService) -> None:
    form = {"From": "+14155550134", "MessageSid": "SM1", "Body": "hi"}
    response = await service.post_twilio("/channels/twilio/sms", form, signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status == 403


async def test_a_webhook_with_a_field_sent_twice_is_accepted(service: RunningService) -> None:
    """An MMS names each picture in its own `MediaUrl` field; Twilio's signature covers every one."""
    form = MultiDict(
        [
            ("From", "+14155550177"),
            ("MessageSid", "MM" + "c" * 32),
            ("Body", "two photos of the dent"),
            ("MediaUrl", "https://api.twilio.com/media/1"),
            ("MediaUrl", "https://api.twilio.com/media/2"),
        ]
    )
    response = await service.post_twilio("/channels/twilio/sms", form)
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("missing", ["From", "MessageSid"])
async def test_sms_without_a_required_field_is_refused_naming_it(service: RunningService, missing: str) -> None:
    form = {"From": "+14155550134", "MessageSid": "SM" + "b" * 32, "Body": "hi"}
    del form[missing]
    response = await service.post_twilio("/channels/twilio/sms", form)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == missing


async def test_sms_from_something_that_is_no_phone_number_is_refused(service: RunningService) -> None:
    response = await service.post_sms(sender="not-a-number", body="hi")
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "From"


async def test_unknown_agent_token_is_refused_at_the_handshake(service: RunningService) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await service.http.ws_connect(f"{service.base_url}/api/v1/agents/ws?token=nobody")
    assert refused.value.status == 401


async def test_agent_socket_from_a_foreign_origin_is_refused(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await service.http.ws_connect(
            f"{service.base_url}/api/v1/agents/ws?token={agent['token']}", headers={"Origin": "https://evil.example"}
        )
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ("this is not json", None),
        ('{"type": "dance"}', "type"),
        ('{"type": "state", "state": "sleeping"}', "state"),
        ('{"type": "accept", "reservation_id": "not-a-uuid"}', "reservation_id"),
        ('{"state": "away"}', "type"),
    ],
)
async def test_malformed_desktop_message_gets_an_error_and_the_socket_stays_open(
    service: RunningService, frame: str, field: str | None
) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    desktop = await service.agent_desktop(agent["token"])
    await desktop.socket.send_str(frame)
    error = await desktop.receive("error")
    assert error["error"]["code"] == "invalid"
    if field is not None:
        assert error["error"]["field"] == field
    # Still connected and answering.
    await desktop.command({"type": "state", "state": "away"}, "state")
    await desktop.close()


async def test_accepting_an_unknown_reservation_is_an_error_on_the_socket(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    desktop = await service.agent_desktop(agent["token"])
    error = await desktop.command({"type": "accept", "reservation_id": "00000000-0000-4000-8000-000000000000"}, "error")
    assert error["error"]["code"] == "not_found"
    await desktop.close()


async def test_admin_api_needs_the_admin_token(service: RunningService) -> None:
    url = f"{service.base_url}/api/v1/queues"
    async with service.http.post(url, json={"name": "sales", "channels": ["sms"]}) as response:
        assert response.status == 401
    async with service.http.post(
        url, json={"name": "sales", "channels": ["sms"]}, headers={"Authorization": "Bearer wrong"}
    ) as response:
        assert response.status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Sales Team!", "channels": ["sms"]}, "name"),
        ({"name": "sales", "channels": ["fax"]}, "channels.0"),
        ({"name": "sales", "channels": []}, "channels"),
        ({"channels": ["sms"]}, "name"),
    ],
)
async def test_bad_queue_body_is_refused_naming_the_field(
    service: RunningService, body: dict[str, object], field: str
) -> None:
    async with service.http.post(
        f"{service.base_url}/api/v1/queues", json=body, headers=service.admin_headers()
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == field


async def test_queue_names_are_unique_and_agents_need_existing_queues(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    headers = service.admin_headers()
    async with service.http.post(
        f"{service.base_url}/api/v1/queues", json={"name": "sales", "channels": ["sms"]}, headers=headers
    ) as response:
        assert response.status == 409
    async with service.http.post(
        f"{service.base_url}/api/v1/agents", json={"name": "Ann", "queues": ["support"]}, headers=headers
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "queues"
    async with service.http.post(f"{service.base_url}/api/v1/agents", data=b"{not json", headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "body"


async def test_lookup_of_an_unknown_client_is_404_and_a_bad_number_400(service: RunningService) -> None:
    headers = service.admin_headers()
    url = f"{service.base_url}/api/v1/clients/lookup"
    async with service.http.get(url, params={"phone": "+14155550199"}, headers=headers) as response:
        assert response.status == 404
    async with service.http.get(url, params={"phone": "banana"}, headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "phone"
    async with service.http.get(f"{service.base_url}/api/v1/clients/42", headers=headers) as response:
        assert response.status == 400
    async with service.http.get(url, params={"phone": "+14155550199"}) as response:
        assert response.status == 401


async def test_health_and_readiness_answer(service: RunningService) -> None:
    async with service.http.get(f"{service.base_url}/healthz") as response:
        assert response.status == 200
    async with service.http.get(f"{service.base_url}/readyz") as response:
        assert response.status == 200
        assert (await response.json())["checks"] == {"database": True, "redis": True, "bus": True}


async def test_unknown_path_is_a_json_404(service: RunningService) -> None:
    async with service.http.get(f"{service.base_url}/api/v1/nothing-here") as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


async def test_behind_a_proxy_the_signature_covers_the_public_url(service_settings: Settings) -> None:
    settings = service_settings.model_copy(update={"public_url": "https://cc.example.com/"})
    async with run_service(settings) as service:
        await service.create_queue("sales", ["sms"])
        # Signed as Twilio signs it: over the public URL it called, not the one the server sees.
        assert (await service.post_sms(sender="+14155550134", body="hi")).status == 200
        form = {"From": "+14155550134", "MessageSid": "SM" + "c" * 32, "Body": "hi"}
        local_signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(
            f"{service.base_url}/channels/twilio/sms", form
        )
        refused = await service.post_twilio("/channels/twilio/sms", form, signature=local_signature)
        assert refused.status == 403


async def test_an_agent_may_authenticate_with_a_bearer_header(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    socket = await service.http.ws_connect(
        f"{service.base_url}/api/v1/agents/ws", headers={"Authorization": f"Bearer {agent['token']}"}
    )
    assert (await socket.receive_json())["type"] == "hello"
    await socket.close()


async def test_webhooks_past_the_admission_bound_get_a_503_to_retry_and_nothing_is_lost(
    service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overloaded API answers at once with a 503 (Twilio retries) instead of taking in more than it carries."""
    async with run_service(service_settings.model_copy(update={"webhook_concurrency": 1})) as service:
        await service.create_queue("sales", ["sms"])
        # A signed contact the broker has not confirmed yet holds the only place.
        bus, confirm = service.services.bus, asyncio.Event()
        publish = bus.publish

        async def confirmed_when_let_go(*args: Any, **kwargs: Any) -> None:
            await confirm.wait()
            await publish(*args, **kwargs)

        monkeypatch.setattr(bus, "publish", confirmed_when_let_go)
        first = asyncio.create_task(service.post_sms(sender="+14155550134", body="first", message_sid="SM" + "d" * 32))
        try:
            admission = service.app[ADMISSION]
            await _until(lambda: admission.in_hand == 1)

            refused = await service.post_sms(sender="+14155550135", body="second", message_sid="SM" + "e" * 32)
            assert refused.status == 503
            assert refused.headers["Retry-After"] == "1"
            assert (await refused.json())["error"]["code"] == "unavailable"
            async with service.http.get(f"{service.base_url}/metrics") as scraped:
                metrics = await scraped.text()
            # An operator tells overload (add capacity) from a broker that does not confirm.
            assert 'cc_webhooks_refused_total{channel="sms",reason="overloaded"} 1.0' in metrics

            confirm.set()
            assert (await first).status == 200
        finally:
            confirm.set()  # a failure above must not leave the first contact waiting
            await asyncio.gather(first, return_exceptions=True)
        # Twilio's retry of the refused one now gets through, and both are on the card.
        retried = await service.post_sms(sender="+14155550135", body="second", message_sid="SM" + "e" * 32)
        assert retried.status == 200
        for number, text in (("+14155550134", "first"), ("+14155550135", "second")):
            card = await _card_when_stored(service.services.cards, number)
            assert [entry.body for entry in card.timeline] == [text]


async def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def _card_when_stored(cards: Cards, number: str, timeout: float = 10) -> ClientCard:
    async with asyncio.timeout(timeout):
        while (card := await cards.by_identity(IdentityKind.PHONE, number)) is None:
            await asyncio.sleep(0.02)
    return ClientCard.model_validate_json(card)
