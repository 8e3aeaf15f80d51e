"""Odd bytes, code points and credentials at every edge, through the running service: each gets a 4xx in our
error shape (403 for what cannot be Twilio's, 401/403 for tokens, 400 naming the field), never a 500 — and
nothing is acknowledged that PostgreSQL cannot store."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from aiohttp import web
from twilio.request_validator import RequestValidator

from channels.twilio.sms import inbound_sms
from contactcenter.host.connections import guarded_runner, guarded_site
from contactcenter.identities import sender_identity
from contactcenter.settings import Settings
from contactcenter.store.cards import Cards
from schema import ClientCard, IdentityKind
from tests.running import ADMIN_TOKEN, TWILIO_AUTH_TOKEN, RunningService, run_service

SMS_PATH = "/channels/twilio/sms"


async def _raw(service: RunningService, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written byte for byte (clients refuse to send some of these bytes)."""
    host, port = service.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
        writer.write(head + f"\r\nHost: {host}:{port}\r\n".encode() + length + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    head_text, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_text.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, payload


def _error(payload: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(payload)["error"]
    return error


def _signed_form(service: RunningService, form: dict[str, str]) -> tuple[bytes, str]:
    return urlencode(form).encode(), RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(
        f"{service.base_url}{SMS_PATH}", form
    )


def _sms_form(**fields: str) -> dict[str, str]:
    return {"MessageSid": "SM" + uuid.uuid4().hex, "From": "+14155550134", "To": "+15005550006", "Body": "hi"} | fields


async def _stored_rows(service: RunningService) -> tuple[int, int, int]:
    pool = service.services.pool
    return (
        await pool.fetchval("SELECT count(*) FROM interactions"),
        await pool.fetchval("SELECT count(*) FROM clients"),
        await pool.fetchval("SELECT count(*) FROM identities"),
    )


# Twilio signatures


async def test_a_non_ascii_twilio_signature_is_refused_with_403(service: RunningService) -> None:
    body = urlencode(_sms_form()).encode()
    head = (
        f"POST {SMS_PATH} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n".encode()
        + "X-Twilio-Signature: é".encode()
    )
    status, _, payload = await _raw(service, head, body)
    assert status == 403
    assert _error(payload)["code"] == "forbidden"


@pytest.mark.parametrize("signed", [False, True])
async def test_a_form_that_is_not_utf8_is_refused_with_403_signed_or_not(service: RunningService, signed: bool) -> None:
    """Twilio posts UTF-8: a body that does not decode cannot carry its signature, whatever header it has."""
    _, signature = _signed_form(service, _sms_form())
    body = b"MessageSid=SM1&From=%2B14155550134&Body=caf\xff"
    head = f"POST {SMS_PATH} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded".encode()
    if signed:
        head += f"\r\nX-Twilio-Signature: {signature}".encode()
    status, _, payload = await _raw(service, head, body)
    assert status == 403
    assert _error(payload)["code"] == "forbidden"


async def test_a_percent_encoded_invalid_byte_is_refused_with_403(service: RunningService) -> None:
    _, signature = _signed_form(service, _sms_form())
    body = b"MessageSid=SM1&From=%2B14155550134&Body=caf%FF"
    head = (
        f"POST {SMS_PATH} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {signature}"
    ).encode()
    status, _, payload = await _raw(service, head, body)
    assert status == 403
    assert _error(payload)["code"] == "forbidden"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"MessageSid": "SM1", "From": "+14155550134"}'),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="From"\r\n\r\n+1\r\n--x--\r\n',
        ),
        ("text/plain", b"hello"),
    ],
)
async def test_an_unsigned_post_of_another_content_type_is_refused_with_403(
    service: RunningService, content_type: str, body: bytes
) -> None:
    async with service.http.post(
        f"{service.base_url}{SMS_PATH}", data=body, headers={"Content-Type": content_type}
    ) as response:
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"


# Bearer tokens


@pytest.mark.parametrize("path", ["/api/v1/queues", "/api/v1/agents"])
async def test_a_non_ascii_bearer_token_is_401_on_admin_paths(service: RunningService, path: str) -> None:
    head = f"POST {path} HTTP/1.1\r\nContent-Type: application/json\r\n".encode() + "Authorization: Bearer é".encode()
    status, headers, payload = await _raw(service, head, b'{"name": "sales", "channels": ["sms"]}')
    assert status == 401
    assert _error(payload)["code"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer")


async def test_a_non_ascii_bearer_token_is_401_on_client_lookup(service: RunningService) -> None:
    head = b"GET /api/v1/clients/lookup?phone=%2B14155550134 HTTP/1.1\r\n" + "Authorization: Bearer é".encode()
    status, _, payload = await _raw(service, head)
    assert status == 401
    assert _error(payload)["code"] == "unauthorized"


@pytest.mark.parametrize("token", [b"\xff", "é".encode(), b"\xc3"])
async def test_a_raw_byte_bearer_token_on_the_agent_socket_is_401(service: RunningService, token: bytes) -> None:
    head = (
        b"GET /api/v1/agents/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " + token
    )
    status, headers, payload = await _raw(service, head)
    assert status == 401
    assert _error(payload)["code"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer")


async def test_every_401_names_the_bearer_scheme(service: RunningService) -> None:
    async with service.http.post(f"{service.base_url}/api/v1/queues", json={}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await service.http.ws_connect(f"{service.base_url}/api/v1/agents/ws?token=nobody")
    assert refused.value.status == 401
    assert refused.value.headers is not None
    assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_agent_token_on_admin_endpoints_is_403_not_401(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    headers = {"Authorization": f"Bearer {agent['token']}"}
    for path, body in (("queues", {"name": "support", "channels": ["sms"]}), ("agents", {"name": "Bo", "queues": []})):
        async with service.http.post(f"{service.base_url}/api/v1/{path}", json=body, headers=headers) as response:
            assert response.status == 403
            assert (await response.json())["error"]["code"] == "forbidden"


# SMS that PostgreSQL could not store


async def _card_when_stored(cards: Cards, number: str, timeout: float = 10) -> ClientCard:
    async with asyncio.timeout(timeout):
        while (card := await cards.by_identity(IdentityKind.PHONE, number)) is None:
            await asyncio.sleep(0.02)
    return ClientCard.model_validate_json(card)


async def test_a_nul_in_the_body_is_stored_as_a_replacement_character_and_offered(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    response = await service.post_sms(sender="+14155550134", body="a\x00b")
    assert response.status == 200
    offer = await desktop.receive("offer")
    assert offer["reservation"]["interaction"]["body"] == "a\ufffdb"
    assert [entry["body"] for entry in offer["card"]["timeline"]] == ["a\ufffdb"]
    card = await _card_when_stored(service.services.cards, "+14155550134")
    assert [entry.body for entry in card.timeline] == ["a\ufffdb"]
    await desktop.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("From", "+1415555\x000134"),
        ("To", "+1\x00"),
        ("MessageSid", "SM\x00" + "a" * 30),
        ("MessageSid", "SM\x1b[31m"),
        ("To", "+15005550006\n"),
    ],
)
async def test_a_nul_or_control_character_in_an_identifier_is_400_naming_it_and_nothing_is_stored(
    service: RunningService, field: str, value: str
) -> None:
    await service.create_queue("sales", ["sms"])
    form = _sms_form(**{field: value})
    response = await service.post_twilio(SMS_PATH, form)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == field
    # Nothing went onto the bus: a valid SMS after it is the only thing ever stored.
    assert (await service.post_sms(sender="+14155550199", body="after")).status == 200
    await _card_when_stored(service.services.cards, "+14155550199")
    assert await _stored_rows(service) == (1, 1, 1)


# A Body past the interaction's 100,000 characters is past the Twilio form's size budget (64 KiB) first: the
# whole form is refused before it is read (413, naming the body), and nothing of it is logged either.
@pytest.mark.parametrize(
    ("field", "length", "status", "named"),
    [("MessageSid", 201, 400, "MessageSid"), ("To", 321, 400, "To"), ("Body", 100_001, 413, "body")],
)
async def test_an_over_long_field_is_refused_naming_it_without_the_body_in_the_log(
    service: RunningService, caplog: pytest.LogCaptureFixture, field: str, length: int, status: int, named: str
) -> None:
    value = "SM" + "7" * (length - 2) if field != "Body" else "secret words " * (length // 13 + 1)
    form = _sms_form(**{field: value})
    with caplog.at_level(logging.DEBUG):
        response = await service.post_twilio(SMS_PATH, form)
    assert response.status == status
    error = (await response.json())["error"]
    assert error["field"] == named
    assert "777777" not in error["message"]
    assert "secret words" not in error["message"]
    assert "secret words" not in caplog.text
    assert "7777777777" not in caplog.text


# Admin API


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "An\u0000n", "queues": ["sales"]}, "name"),
        ({"name": "  \t ", "queues": ["sales"]}, "name"),
        ({"name": "\ud800", "queues": ["sales"]}, "name"),
        ({"name": "Ann", "queues": ["sal\u0000es"]}, "queues.0"),
        ({"name": "Ann", "queues": [f"q{n}" for n in range(101)]}, "queues"),
    ],
)
async def test_an_agent_body_postgresql_could_not_store_is_400_naming_the_field(
    service: RunningService, body: dict[str, Any], field: str
) -> None:
    await service.create_queue("sales", ["sms"])
    # Written by hand: a lone surrogate is valid JSON (`\ud800`) that json.dumps would otherwise escape alike.
    async with service.http.post(
        f"{service.base_url}/api/v1/agents", data=json.dumps(body), headers=service.admin_headers()
    ) as response:
        assert response.status == 400, await response.text()
        assert (await response.json())["error"]["field"] == field


async def test_a_queue_name_with_a_nul_is_400_naming_it(service: RunningService) -> None:
    async with service.http.post(
        f"{service.base_url}/api/v1/queues",
        data='{"name": "sales\\u0000", "channels": ["sms"]}',
        headers=service.admin_headers(),
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "name"


async def test_json_nested_very_deep_is_400_naming_the_body(service: RunningService) -> None:
    body = "[" * 100_000 + "]" * 100_000
    async with service.http.post(
        f"{service.base_url}/api/v1/agents", data=body, headers=service.admin_headers()
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "body"


@pytest.mark.parametrize(
    "body",
    ["1" * 5000, '{"name": ' + "9" * 5000 + ', "queues": ["sales"]}'],
    ids=["bare-number", "number-in-a-field"],
)
async def test_json_with_a_number_past_pythons_digit_limit_is_400_naming_the_body(
    service: RunningService, body: str
) -> None:
    """Python refuses to read an integer of more than 4,300 digits with a plain ValueError, not the JSON error."""
    async with service.http.post(
        f"{service.base_url}/api/v1/agents", data=body, headers=service.admin_headers()
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "body"


@pytest.mark.parametrize("charset", [b"klingon", b"\xff", b"rot13"])
async def test_a_json_body_in_a_charset_we_cannot_read_is_400_naming_the_content_type(
    service: RunningService, charset: bytes
) -> None:
    head = (
        b"POST /api/v1/queues HTTP/1.1\r\nContent-Type: application/json; charset=" + charset + b"\r\n"
        b"Authorization: Bearer " + ADMIN_TOKEN.encode()
    )
    status, _, payload = await _raw(service, head, b'{"name": "sales", "channels": ["sms"]}')
    assert status == 400
    assert _error(payload)["field"] == "Content-Type"


async def test_unknown_queues_are_named_briefly(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    queues = ["sales", *(f"nope-{n}" for n in range(99))]
    async with service.http.post(
        f"{service.base_url}/api/v1/agents", json={"name": "Ann", "queues": queues}, headers=service.admin_headers()
    ) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["field"] == "queues"
    assert "nope-0" in error["message"]
    assert "nope-98" not in error["message"]
    assert len(error["message"]) < 200


# The agent socket's Origin


async def test_the_origin_check_trusts_neither_the_host_header_nor_another_scheme(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    url = f"{service.base_url}/api/v1/agents/ws?token={agent['token']}"
    for origin, host in (
        ("http://evil.example:8091", "evil.example:8091"),
        ("https://" + service.base_url.removeprefix("http://"), None),
        ("null", None),
        ("http://127.0.0.1:1", None),
    ):
        headers = {"Origin": origin} | ({"Host": host} if host else {})
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await service.http.ws_connect(url, headers=headers)
        assert refused.value.status == 403, origin


async def test_the_service_origin_and_its_loopback_twin_are_allowed(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    port = service.base_url.rsplit(":", 1)[1]
    for origin in (service.base_url, f"http://localhost:{port}", f"HTTP://LOCALHOST:{port}/"):
        socket = await service.http.ws_connect(
            f"{service.base_url}/api/v1/agents/ws?token={agent['token']}", headers={"Origin": origin}
        )
        assert (await socket.receive_json())["type"] == "hello", origin
        await socket.close()


async def test_the_public_url_and_allowed_origins_are_allowed(service_settings: Settings) -> None:
    settings = service_settings.model_copy(
        update={"public_url": "https://cc.example.com/twilio", "allowed_origins": ["https://desk.example:8443"]}
    )
    async with run_service(settings) as service:
        await service.create_queue("sales", ["sms"])
        agent = await service.create_agent("Ann", ["sales"])
        url = f"{service.base_url}/api/v1/agents/ws?token={agent['token']}"
        for origin in ("https://cc.example.com", "https://cc.example.com:443", "https://desk.example:8443"):
            socket = await service.http.ws_connect(url, headers={"Origin": origin})
            assert (await socket.receive_json())["type"] == "hello", origin
            await socket.close()
        for origin in ("http://cc.example.com", "https://desk.example", service.base_url):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await service.http.ws_connect(url, headers={"Origin": origin})
            assert refused.value.status == 403, origin


# Reservations


async def test_accepting_an_offer_after_it_expired_is_a_conflict(service_settings: Settings) -> None:
    async with run_service(service_settings.model_copy(update={"reservation_timeout_seconds": 0.2})) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        assert (await service.post_sms(sender="+14155550134", body="hi")).status == 200
        offer = await desktop.receive("offer")
        revoked = await desktop.receive("revoked")
        assert revoked["reason"] == "expired"
        error = await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "error")
        assert error["error"]["code"] == "conflict"
        assert error["error"]["field"] == "reservation_id"
        await desktop.close()


# Twilio retries


async def test_a_retried_message_sid_from_another_number_is_stored_once_and_makes_no_card(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    sid = "SM" + "f" * 32
    assert (await service.post_sms(sender="+14155550134", body="hi", message_sid=sid)).status == 200
    await _card_when_stored(service.services.cards, "+14155550134")
    # The retry as a router records it (through the bus its order against other contacts is not known).
    retry = inbound_sms(_sms_form(MessageSid=sid, From="+14155550135"), "US")
    for with_card in (True, False):
        recorded = await service.services.conversations.record_inbound(
            retry, sender_identity(retry, "US"), with_card=with_card
        )
        assert not recorded.new
    assert await _stored_rows(service) == (1, 1, 1)
    assert await service.services.cards.by_identity(IdentityKind.PHONE, "+14155550135") is None


# Over-long URLs


async def test_an_over_long_query_is_a_400_and_the_service_goes_on(service: RunningService) -> None:
    status, headers, payload = await _raw(service, f"GET /healthz?x={quote('a' * 20_000)} HTTP/1.1".encode())
    assert status in (400, 414)
    assert headers["content-type"].startswith("application/json")
    assert _error(payload)["code"] == "bad_request"
    async with service.http.get(f"{service.base_url}/healthz") as response:
        assert response.status == 200


@pytest.mark.parametrize(
    "head",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
        b"GET /healthz HTTP/1.1\r\nX-Bad\x00Header: 1",  # a NUL in a header's name
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1",  # an over-long path
    ],
    ids=["tls-hello", "nul-in-header", "long-path"],
)
async def test_what_is_not_http_gets_the_json_error_shape_and_no_traceback_in_the_log(
    service: RunningService, caplog: pytest.LogCaptureFixture, head: bytes
) -> None:
    """Requests aiohttp cannot parse never reach the app: they too are answered in our error shape, and an
    attacker who sends them cannot fill the log with tracebacks."""
    with caplog.at_level(logging.DEBUG):
        status, headers, payload = await _raw(service, head)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert _error(payload)["code"] == "bad_request"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_a_handler_that_raises_is_answered_in_the_json_error_shape_with_its_traceback_logged(
    service_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A defect of ours past the error middleware is still a JSON answer (and a traceback for us), never
    aiohttp's plain-text page — on the same guarded site `contactcenter serve` listens on."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a defect")

    app = web.Application()
    app.router.add_get("/broken", broken)
    runner = guarded_runner(app, service_settings)
    await runner.setup()
    try:
        await guarded_site(runner, service_settings, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/broken") as response:
            assert response.status == 500
            assert (await response.json())["error"]["code"] == "internal"
    finally:
        await runner.cleanup()
    assert any(record.exc_info and "a defect" in str(record.exc_info[1]) for record in caplog.records)


async def test_a_lookup_by_an_email_postgresql_could_not_hold_is_400_naming_it(service: RunningService) -> None:
    query = urlencode({"email": "dana\x00@example.com"})
    url = f"{service.base_url}/api/v1/clients/lookup?{query}"
    async with service.http.get(url, headers=service.admin_headers()) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == "email"


async def test_a_number_that_does_not_parse_is_not_repeated_in_the_answer(service: RunningService) -> None:
    """A customer's number (even a mistyped one) is personal data: the 400 names the field, not the value."""
    response = await service.post_sms(sender="555-0199-not-a-number", body="hi")
    assert response.status == 400
    error = await response.json()
    assert error["error"]["field"] == "From"
    assert "0199" not in error["error"]["message"]
