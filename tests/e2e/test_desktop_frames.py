"""The desktop protocol is typed both ways: one agent's working day on the real service sends it every kind of
frame the server has, and each is a `schema.desktop.ServerFrame` that its model writes back as it was sent
(`tests.frames`, which every desktop of the e2e tests checks too)."""

from __future__ import annotations

import logging
import typing
import uuid
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from contactcenter.errors import Unavailable
from schema.desktop import ServerFrame
from tests.e2e.test_voice import MENU, VOICE, call, call_to_queue, put_menu
from tests.running import AgentDesktop, FakeTwilioApi, RunningService
from tests.visitors import ChatVisitor

SENDER = "+14155550134"


def frame_types() -> set[str]:
    union, _ = typing.get_args(ServerFrame)
    return {typing.get_args(model.model_fields["type"].annotation)[0] for model in typing.get_args(union)}


class Seen:
    def __init__(self) -> None:
        self.types: set[str] = set()

    async def receive(self, desktop: AgentDesktop, kind: str) -> dict[str, Any]:
        frame = await desktop.receive(kind)  # checked against the schema as it arrives
        self.types.add(kind)
        return frame

    async def connect(
        self, service: RunningService, token: str, query: str = ""
    ) -> tuple[AgentDesktop, dict[str, Any]]:
        url = f"{service.base_url}/api/v1/agents/ws?token={token}{query}"
        desktop = AgentDesktop(await service.http.ws_connect(url))
        return desktop, await self.receive(desktop, "hello")

    async def command(self, desktop: AgentDesktop, message: dict[str, Any], answer: str) -> dict[str, Any]:
        await desktop.send(message)
        return await self.receive(desktop, answer)


async def test_every_frame_a_desktop_gets_is_a_server_frame_its_model_writes_back_as_sent(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    seen = Seen()
    await service.create_queue("sales", ["sms"])
    ann = await service.create_agent("Ann", ["sales"])
    desktop, hello = await seen.connect(service, ann["token"])
    assert hello["conversations"] == []
    await seen.command(desktop, {"type": "state", "state": "available"}, "state")

    await service.post_sms(sender=SENDER, body="Is my car ready?")
    offer = await seen.receive(desktop, "offer")
    await seen.command(desktop, {"type": "reject", "reservation_id": offer["reservation"]["id"]}, "rejected")
    offer = await seen.receive(desktop, "offer")  # nobody else is there: back to Ann
    accepted = await seen.command(desktop, {"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    conversation = accepted["conversation_id"]

    await service.post_sms(sender=SENDER, body="It's the blue one")
    await seen.receive(desktop, "message")
    await seen.command(desktop, {"type": "reply", "conversation_id": conversation, "text": "At nine."}, "replied")
    await seen.command(desktop, {"type": "state", "state": "sleeping"}, "error")

    # A desktop that comes back is told what it holds, card and interactions included.
    replaced = desktop
    desktop, hello = await seen.connect(service, ann["token"])
    await replaced.close()
    assert [held["id"] for held in hello["conversations"]] == [conversation]
    assert [i["body"] for i in hello["conversations"][0]["interactions"]] == [
        "Is my car ready?",
        "It's the blue one",
        "At nine.",
    ]
    await seen.command(desktop, {"type": "state", "state": "available"}, "state")
    await seen.command(desktop, {"type": "complete", "conversation_id": conversation}, "completed")

    await service.post_sms(sender=SENDER, body="One more thing")
    offer = await seen.receive(desktop, "offer")
    accepted = await seen.command(desktop, {"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    transfer = {"type": "transfer", "conversation_id": accepted["conversation_id"], "queue": "sales"}
    await seen.command(desktop, transfer, "transferred")
    await seen.receive(desktop, "offer")  # nobody else takes sales: back to Ann
    await seen.command(desktop, {"type": "state", "state": "away"}, "state")
    await seen.receive(desktop, "revoked")
    await desktop.close()

    # A chat visitor typing in a conversation another agent holds.
    await service.create_queue("web", ["chat"])
    bo = await service.create_agent("Bo", ["web"])
    chat_desktop, _ = await seen.connect(service, bo["token"])
    await seen.command(chat_desktop, {"type": "state", "state": "available"}, "state")
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.say("Hello from the website")
    offer = await seen.receive(chat_desktop, "offer")
    await seen.command(chat_desktop, {"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    await visitor.send({"type": "typing"})
    await seen.receive(chat_desktop, "customer")
    await visitor.send({"type": "identify", "email": "bo@example.com"})
    await seen.receive(chat_desktop, "claims")
    # The visitor's card erased while Bo holds the chat: closed under Bo.
    erase = f"{service.base_url}/api/v1/clients/{offer['card']['client']['id']}"
    async with service.http.delete(erase, headers=service.admin_headers()) as response:
        assert response.status == 200
    assert (await seen.receive(chat_desktop, "closed"))["reason"] == "erased"
    await visitor.close()
    await chat_desktop.close()

    # A call on the line of an agent whose desktop shows the phone: in progress, then ended.
    await service.create_queue("service", ["voice"])
    await put_menu(service, MENU)
    cy = await service.create_agent("Cy", ["service"])
    phone_desktop, _ = await seen.connect(service, cy["token"], "&calls=true")
    await seen.command(phone_desktop, {"type": "state", "state": "available"}, "state")
    sid = "CA" + uuid.uuid4().hex
    await call_to_queue(service, sid, "2")
    offer = await seen.receive(phone_desktop, "offer")
    await phone_desktop.send({"type": "accept", "reservation_id": offer["reservation"]["id"]})
    await seen.receive(phone_desktop, "call")
    await seen.receive(phone_desktop, "accepted")
    await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="12")
    assert (await seen.receive(phone_desktop, "call"))["state"] == "ended"
    await phone_desktop.close()

    assert seen.types == frame_types()


@pytest.mark.parametrize(
    ("failure", "logged"),
    [
        (Unavailable("live state did not answer in time"), "live state did not answer in time"),
        (RedisConnectionError("redis://:hunter2@cache:6379 refused"), "a service we depend on failed: ConnectionError"),
    ],
    ids=["ours", "redis"],
)
async def test_a_command_that_meets_a_failing_service_is_answered_unavailable_and_logged_without_its_detail(
    service: RunningService,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    logged: str,
) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()

    async def failing(*args: Any) -> None:
        raise failure

    monkeypatch.setattr(service.services.live, "set_agent_state", failing)
    error = await desktop.command({"type": "state", "state": "away"}, "error")
    monkeypatch.undo()
    assert error["error"]["code"] == "unavailable"
    await desktop.command({"type": "state", "state": "away"}, "state")  # still connected, and served again
    await desktop.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(message.endswith(logged) for message in warnings), warnings
    assert not any("hunter2" in message for message in warnings)
