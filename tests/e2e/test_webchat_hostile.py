"""The visitor's socket tried as an attacker would: forged tokens, foreign pages, malformed and oversized frames,
floods — each refused with an error (a 403 at the handshake naming the field, an error frame on the socket),
never a crash; the socket goes on serving the visitor afterwards."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.running import RunningService
from tests.visitors import ChatVisitor


async def _handshake_refusal(service: RunningService, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await service.http.ws_connect(f"{service.base_url}/chat/ws", **kwargs)
    status = refused.value.status
    async with service.http.get(f"{service.base_url}/chat/ws", **kwargs) as response:
        assert response.status == status
        body: dict[str, Any] = await response.json()
    return status, body


async def test_a_token_changed_by_one_character_is_refused_and_reveals_no_conversation(
    service: RunningService,
) -> None:
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.say("my secret order")
    assert visitor.token is not None
    header, payload, signature = visitor.token.split(".")
    forged = f"{header}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    for token in (forged, "not-a-token", "\x00", f"{header}.{payload}.", "é" * 100):
        status, body = await _handshake_refusal(service, params={"token": token})
        assert status == 403
        assert body == {"error": {"code": "forbidden", "message": body["error"]["message"], "field": "token"}}
    # The real token still resumes it.
    assert [
        e["text"] for e in (await ChatVisitor(service.http, service.base_url, visitor.token).connect())["history"]
    ] == ["my secret order"]
    await visitor.close()


async def test_a_page_of_a_foreign_origin_may_not_open_the_socket_and_the_services_own_may(
    service: RunningService,
) -> None:
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1", "http://127.0.0.1.evil.example"):
        status, body = await _handshake_refusal(service, headers={"Origin": origin})
        assert status == 403
        assert body["error"]["field"] == "Origin"
    own = f"http://127.0.0.1:{service.settings.http_port}"
    visitor = ChatVisitor(service.http, service.base_url)
    assert (await visitor.connect(origin=own))["history"] == []
    await visitor.close()


async def test_after_that_is_not_a_number_is_a_400_naming_it(service: RunningService) -> None:
    for after in ("-1", "x", "1" * 30, "\uff11"):
        status, body = await _handshake_refusal(service, params={"after": after})
        assert (status, body["error"]["field"]) == (400, "after")


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ("not json", None),
        ("[]", None),
        ("[" * 10_000, None),
        ('{"type": "shout"}', "type"),
        ('{"type": "message", "id": "a"}', "text"),
        ('{"type": "message", "id": "a", "text": ""}', "text"),
        ('{"type": "message", "id": "a\\u0000b", "text": "hi"}', "id"),
        ('{"type": "message", "id": "a", "text": "\\ud800"}', "text"),
        ('{"type": "message", "id": "a", "text": "hi", "admin": true}', "admin"),
        ('{"type": "identify", "email": "not an address\\u0007"}', "email"),
        ('{"type": "identify", "phone": "12"}', "phone"),
    ],
)
async def test_a_malformed_frame_gets_an_error_frame_and_the_socket_goes_on(
    service: RunningService, frame: str, field: str | None
) -> None:
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    assert visitor.socket is not None
    await visitor.socket.send_str(frame)
    error = await visitor.receive("error")
    assert error["error"]["code"] == "invalid"
    if field is not None:
        assert error["error"]["field"] == field, error
    assert (await visitor.say("still here"))["seq"] == 1
    await visitor.close()


async def test_a_binary_frame_and_a_message_past_the_text_bound_get_error_frames(service: RunningService) -> None:
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    assert visitor.socket is not None
    await visitor.socket.send_bytes(b"\x00\x01")
    assert (await visitor.receive("error"))["error"]["code"] == "invalid"
    too_long = "x" * (service.settings.chat_max_text + 1)
    await visitor.send({"type": "message", "id": "long", "text": too_long})
    error = await visitor.receive("error")
    assert (error["error"]["field"], error["error"]["id"]) == ("text", "long")
    await visitor.close()


async def test_a_frame_past_the_sockets_bound_closes_it_with_1009_and_the_service_serves_the_next(
    service: RunningService,
) -> None:
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    assert visitor.socket is not None
    await visitor.socket.send_str(json.dumps({"type": "message", "id": "x", "text": "y" * 1_000_000}))
    closing = await visitor.socket.receive()
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert visitor.socket.close_code == 1009
    await visitor.connect()
    assert (await visitor.say("after the big one"))["seq"] == 1
    await visitor.close()


async def test_invalid_utf8_in_a_text_frame_closes_the_socket_as_the_protocol_says(service: RunningService) -> None:
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    assert visitor.socket is not None
    # aiohttp's client checks nothing it sends as bytes: a text frame whose payload is not UTF-8.
    await visitor.socket._writer.send_frame(b'{"type":"message","id":"u","text":"\xff\xfe"}', aiohttp.WSMsgType.TEXT)
    closing = await visitor.socket.receive()
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert visitor.socket.close_code == 1007
    async with service.http.get(f"{service.base_url}/healthz") as response:
        assert response.status == 200


async def test_a_flood_gets_rate_limited_error_frames_then_the_socket_is_closed(service: RunningService) -> None:
    burst = service.settings.chat_frame_burst
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    assert visitor.socket is not None
    for _ in range(burst):
        await visitor.send({"type": "typing"})
    await visitor.send({"type": "message", "id": "over", "text": "one too many"})
    error = await visitor.receive("error")
    assert error["error"]["code"] == "rate_limited"
    # A client that keeps flooding past its error frames is cut off.
    for _ in range(60):
        if visitor.socket.closed:
            break
        await visitor.send({"type": "typing"})
    codes = []
    while True:
        frame = await visitor.socket.receive()
        if frame.type is not aiohttp.WSMsgType.TEXT:
            break
        codes.append(json.loads(frame.data)["error"]["code"])
    assert set(codes) == {"rate_limited"}
    assert visitor.socket.close_code == 1008
    # Reconnecting does not refill the bucket.
    await visitor.connect()
    await visitor.send({"type": "message", "id": "again", "text": "hello?"})
    assert (await visitor.receive("error"))["error"]["code"] == "rate_limited"
    await visitor.close()
