"""A chat visitor proves the email it claims with a code sent to it (through a real SMTP relay on loopback,
aiosmtpd): the email then joins the visitor's card as a verified identity, and a card that holds it verified is
merged with the visitor's (undoably) — while a claim that is not proved never reaches anyone's history."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from contactcenter.bus.interactions import inbound_message
from contactcenter.settings import Settings
from schema import Channel, IdentityKind, Interaction
from tests.e2e.test_client_cards import _call, _events
from tests.running import RunningService, run_service
from tests.visitors import ChatVisitor


class Relay:
    """An SMTP relay on loopback that keeps what it is handed."""

    def __init__(self) -> None:
        self.mail: list[EmailMessage] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802  # aiosmtpd's hook name
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.mail.append(message)
        self.arrived.set()
        return "250 OK"


@pytest.fixture
async def relay() -> AsyncIterator[tuple[Relay, int]]:
    handler = Relay()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(handler), "127.0.0.1", 0)
    yield handler, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def relayed(service_settings: Settings, relay: tuple[Relay, int]) -> AsyncIterator[tuple[RunningService, Relay]]:
    """A service whose codes leave through the relay on loopback."""
    handler, port = relay
    settings = service_settings.model_copy(update={"smtp_relay_url": SecretStr(f"smtp://127.0.0.1:{port}")})
    async with run_service(settings) as service:
        yield service, handler


async def _code(relay: Relay) -> str:
    async with asyncio.timeout(10):
        await relay.arrived.wait()
    relay.arrived.clear()
    found = re.search(r"\b(\d{6})\b", relay.mail[-1].get_content())
    assert found is not None
    return found.group(1)


async def _customer_who_mailed_us(service: RunningService, address: str, body: str) -> dict[str, Any]:
    """The card of a customer whose mail passed DMARC (its email verified), once the router stored it."""
    mail = Interaction(
        channel=Channel.EMAIL,
        provider_id=f"<{body}@mail.example.com>",
        from_address=address,
        sender_kind=IdentityKind.EMAIL,
        from_verified=True,
        body=body,
        received_at=datetime.now(UTC),
    )
    bus, topology = service.services.bus, service.services.topology
    message = inbound_message([mail])
    await bus.publish(topology.interactions, "interaction.email.inbound", message, message_id=body, mandatory=True)
    async with asyncio.timeout(20):
        while True:
            status, card = await _call(service, "GET", f"/api/v1/clients/lookup?email={address}")
            if status == 200:
                return card
            await asyncio.sleep(0.05)


async def _eve(service: RunningService) -> dict[str, Any]:
    """Queues for mail and chat, and Eve's card: she mailed us from her (DMARC-verified) address."""
    await service.create_queue("mail", ["email"])
    await service.create_queue("web", ["chat"])
    return await _customer_who_mailed_us(service, "eve@example.com", "my-order-42-is-late")


async def _prove(visitor: ChatVisitor, relay: Relay, email: str) -> None:
    """The visitor claims `email` and proves it with the code mailed to it."""
    await visitor.send({"type": "identify", "email": email})
    await visitor.receive("identified")
    await visitor.send({"type": "verify_email"})
    await visitor.receive("code_sent")
    await visitor.send({"type": "verify", "code": await _code(relay)})
    await visitor.receive("verified")


async def _chat_offer(service: RunningService, visitor: ChatVisitor, text: str) -> dict[str, Any]:
    desktop = await service.available_agent(queues=("web",))
    await visitor.say(text)
    offer: dict[str, Any] = await desktop.receive("offer")
    await desktop.close()
    return offer


async def test_a_stranger_who_types_someones_email_sees_nothing_of_their_history(service: RunningService) -> None:
    eve = await _eve(service)
    stranger = ChatVisitor(service.http, service.base_url)
    await stranger.connect()
    await stranger.send({"type": "identify", "name": "Eve", "email": "Eve@Example.com"})
    await stranger.receive("identified")
    offer = await _chat_offer(service, stranger, "where is my order?")

    card = offer["card"]
    assert card["client"]["id"] != eve["client"]["id"]
    assert [i["kind"] for i in card["identities"]] == ["visitor"]
    assert [entry["body"] for entry in card["timeline"]] == ["where is my order?"]
    # What the stranger said is on its own card, as a claim: shown to the agent, apart from the identities.
    claimed = {
        "channel": "chat",
        "visitor_id": stranger.welcome["visitor_id"],
        "name": "Eve",
        "email": "eve@example.com",
        "phone": None,
        "email_verified": False,
    }
    assert card["claims"] == [claimed]
    status, read = await _call(service, "GET", f"/api/v1/clients/{card['client']['id']}")
    assert (status, read["claims"], [i["kind"] for i in read["identities"]]) == (200, [claimed], ["visitor"])
    status, still = await _call(service, "GET", f"/api/v1/clients/{eve['client']['id']}")
    assert status == 200
    assert (still["client"]["merged"], [e["body"] for e in still["timeline"]]) == ([], ["my-order-42-is-late"])
    assert still["claims"] == []
    assert await _events(service, "client.merged") == []
    await stranger.close()


async def test_a_visitor_who_proves_the_email_of_a_card_lands_on_it_with_both_histories_and_it_can_be_undone(
    relayed: tuple[RunningService, Relay],
) -> None:
    service, relay = relayed
    eve = await _eve(service)
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.say("hello")  # the visitor's own card, with its own history, first
    await _prove(visitor, relay, "Eve@Example.com")
    desktop = await service.available_agent(queues=("web",))
    offer = await desktop.receive("offer")  # the chat waiting since "hello", with the card as it is now
    await desktop.close()

    card = offer["card"]
    assert card["client"]["id"] == eve["client"]["id"]
    assert sorted(e["body"] for e in card["timeline"]) == ["hello", "my-order-42-is-late"]
    assert sorted((i["kind"], i["verified"]) for i in card["identities"]) == [("email", True), ("visitor", True)]
    [merged] = await _events(service, "client.merged")
    assert merged["survivor_id"] == eve["client"]["id"]
    assert merged["actor"] == f"visitor:{visitor.welcome['visitor_id']}"
    [visitors_card] = card["client"]["merged"]

    status, _ = await _call(service, "DELETE", f"/api/v1/merges/{merged['merge_id']}")
    assert status == 200
    status, apart = await _call(service, "GET", f"/api/v1/clients/{visitors_card}")
    assert (status, apart["client"]["id"]) == (200, visitors_card)
    assert [e["body"] for e in apart["timeline"]] == ["hello"]
    status, eves = await _call(service, "GET", f"/api/v1/clients/{eve['client']['id']}")
    assert [e["body"] for e in eves["timeline"]] == ["my-order-42-is-late"]
    await visitor.close()


async def test_the_agent_holding_the_chat_is_told_the_card_it_became_when_a_proof_merges_it(
    relayed: tuple[RunningService, Relay],
) -> None:
    service, relay = relayed
    eve = await _eve(service)
    desktop = await service.available_agent(queues=("web",))
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.say("hello")
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    await visitor.receive("agent")
    assert offer["card"]["client"]["id"] != eve["client"]["id"]

    await visitor.send({"type": "identify", "email": "eve@example.com"})
    await visitor.receive("identified")
    claimed = await desktop.receive("claims")
    assert (claimed["client_id"], claimed["email_verified"]) == (offer["card"]["client"]["id"], False)
    assert claimed["possible_matches"] == [
        {
            "client_id": eve["client"]["id"],
            "score": 0.5,
            "reasons": ["holds the email the customer claims (not verified)"],
        }
    ]
    await _prove(visitor, relay, "eve@example.com")
    await desktop.receive("claims")  # the claim said again, as `identify` does
    proved = await desktop.receive("claims")
    # One card now, Eve's: no other card to suggest.
    assert (proved["client_id"], proved["email_verified"], proved["possible_matches"]) == (
        eve["client"]["id"],
        True,
        [],
    )
    await visitor.close()
    await desktop.close()


async def test_a_visitor_proves_its_email_with_the_code_sent_to_it_and_the_agent_sees_it_proved(
    service_settings: Settings, relay: tuple[Relay, int]
) -> None:
    handler, port = relay
    settings = service_settings.model_copy(update={"smtp_relay_url": SecretStr(f"smtp://127.0.0.1:{port}")})
    async with run_service(settings) as service:
        await service.create_queue("web", ["chat"])
        visitor = ChatVisitor(service.http, service.base_url)
        await visitor.connect()
        await visitor.send({"type": "verify_email"})
        refused = await visitor.receive("error")
        assert refused["error"]["field"] == "email"  # no email claimed yet

        await visitor.send({"type": "identify", "email": "Eve@Example.com"})
        await visitor.receive("identified")
        await visitor.send({"type": "verify_email"})
        assert await visitor.receive("code_sent") == {"type": "code_sent", "email": "eve@example.com"}
        code = await _code(handler)
        assert handler.mail[-1]["To"] == "eve@example.com"
        await visitor.send({"type": "verify_email"})  # again at once: one a minute
        assert (await visitor.receive("error"))["error"]["code"] == "conflict"

        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for bad, field in ((wrong, "code"), ("12345", "code"), ("abcdef", "code")):
            await visitor.send({"type": "verify", "code": bad})
            assert (await visitor.receive("error"))["error"]["field"] == field
        await visitor.send({"type": "verify", "code": code})
        assert await visitor.receive("verified") == {"type": "verified", "email": "eve@example.com"}

        desktop = await service.available_agent(queues=("web",))
        await visitor.say("It's me")
        offer = await desktop.receive("offer")
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        claims: dict[str, Any] = await desktop.receive("claims")
        assert (claims["email"], claims["email_verified"]) == ("eve@example.com", True)
        identities = [(i["kind"], i["value"], i["verified"], i["source"]) for i in offer["card"]["identities"]]
        assert identities == [
            ("visitor", visitor.welcome["visitor_id"], True, "contact"),
            ("email", "eve@example.com", True, "contact"),
        ]
        assert [(c["email"], c["email_verified"]) for c in offer["card"]["claims"]] == [("eve@example.com", True)]
        [added] = [e for e in await _events(service, "identity.added") if e["kind"] == "email"]
        assert (added["client_id"], added["verified"]) == (offer["card"]["client"]["id"], True)
        await visitor.close()
        await desktop.close()


async def test_five_wrong_codes_spend_it_and_without_a_relay_no_code_leaves(
    service: RunningService, service_settings: Settings, relay: tuple[Relay, int]
) -> None:
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.send({"type": "identify", "email": "eve@example.com"})
    await visitor.receive("identified")
    await visitor.send({"type": "verify_email"})
    assert (await visitor.receive("error"))["error"]["code"] == "unavailable"  # CC_SMTP_RELAY_URL is not set
    await visitor.close()

    handler, port = relay
    settings = service_settings.model_copy(update={"smtp_relay_url": SecretStr(f"smtp://127.0.0.1:{port}")})
    async with run_service(settings) as other:
        visitor = ChatVisitor(other.http, other.base_url)
        await visitor.connect()
        await visitor.send({"type": "identify", "email": "eve@example.com"})
        await visitor.receive("identified")
        await visitor.send({"type": "verify_email"})
        await visitor.receive("code_sent")
        code = await _code(handler)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            await visitor.send({"type": "verify", "code": wrong})
            assert (await visitor.receive("error"))["error"]["message"] == "this is not the code we sent"
        await visitor.send({"type": "verify", "code": code})  # the right one, too late
        assert (await visitor.receive("error"))["error"]["field"] == "code"
        await visitor.close()
