"""docs/adding-a-channel.md followed to the letter by a channel that is not ours: a provider that posts JSON and
takes replies, written as a channel package would be (here in the test), registered by one line in the host's
list (`CHANNELS`), and nothing else of the service changed. A contact in pops the agent's offer with the card, a
malformed one is refused naming the field, the agent's reply leaves through the channel's sender, the channel's
operation is in the API's document — and two packages serving one channel's replies stop the start, naming both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from aiohttp import web
from pydantic import BaseModel, Field

from channels import ChannelAdapter, ChannelContext, ChannelParts
from contactcenter.agents.outbound import OutboundMessage
from contactcenter.api.operations import Answer, Operation
from contactcenter.errors import Invalid
from contactcenter.host import app as host
from contactcenter.http_errors import read_body
from contactcenter.settings import Settings
from schema import Channel, IdentityKind, Interaction
from tests.running import run_service

CUSTOMER = "+14155550134"
OURS = "+15005550006"


class PigeonMessage(BaseModel):
    """What the provider posts: its own id for the message, the sender's number, ours, and the text."""

    id: str = Field(min_length=1, max_length=200)
    sender: str = Field(min_length=1, max_length=320)
    to: str = Field(min_length=1, max_length=320)
    text: str = Field(max_length=10_000)


PIGEON_MESSAGES = Operation(
    "POST",
    "/channels/pigeon/messages",
    "pigeonMessage",
    "An SMS as the Pigeon provider posts it",
    {204: Answer("published: the provider may forget it")},
    body=PigeonMessage,
)


class PigeonSender:
    """The channel's `ReplySender`: it keeps what it was handed, as a provider's stand-in would."""

    max_length = 160
    address_kind = IdentityKind.PHONE

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> str:
        if len(message.body) > self.max_length:
            raise Invalid(f"at most {self.max_length} characters on Pigeon", field="text")
        self.sent.append(message)
        return f"PG{len(self.sent)}"


class PigeonChannel:
    """The package's one object the host registers (`channels.ChannelAdapter`)."""

    def __init__(self) -> None:
        self.sender = PigeonSender()

    @property
    def operations(self) -> Sequence[Operation]:
        return (PIGEON_MESSAGES,)

    def settings_problem(self, settings: Settings) -> str | None:
        return None

    def parts(self, context: ChannelContext) -> ChannelParts:
        async def receive(request: web.Request) -> web.Response:
            message = await read_body(request, PigeonMessage)
            interaction = Interaction(
                channel=Channel.SMS,
                provider_id=message.id,
                from_address=message.sender,
                sender_kind=IdentityKind.PHONE,
                to_address=message.to,
                body=message.text,
                received_at=datetime.now(UTC),
            )
            with context.admission.slot():
                await context.publisher.publish(interaction)
            return web.Response(status=204)

        return ChannelParts(routes=[PIGEON_MESSAGES.route(receive)], senders={Channel.SMS: self.sender})


def _registered_instead_of_twilio(monkeypatch: pytest.MonkeyPatch, pigeon: ChannelAdapter) -> None:
    # The one line in contactcenter/host/app.py: Pigeon carries this operator's SMS, in Twilio's place.
    others = tuple(channel for channel in host.CHANNELS if type(channel).__name__ != "TwilioChannel")
    monkeypatch.setattr(host, "CHANNELS", (pigeon, *others))


async def test_a_channel_added_by_the_recipe_takes_a_contact_to_an_offer_and_carries_the_reply_out(
    service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    pigeon = PigeonChannel()
    _registered_instead_of_twilio(monkeypatch, pigeon)
    async with run_service(service_settings) as service:
        url = f"{service.base_url}/channels/pigeon/messages"
        async with service.http.get(f"{service.base_url}/api/v1/openapi.json") as response:
            assert "/channels/pigeon/messages" in (await response.json())["paths"]

        async with service.http.post(url, json={"id": "PG-in-1", "to": OURS, "text": "where is my order?"}) as refused:
            assert refused.status == 400
            assert (await refused.json())["error"]["field"] == "sender"

        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        async with service.http.post(
            url, json={"id": "PG-in-1", "sender": CUSTOMER, "to": OURS, "text": "where is my order?"}
        ) as taken:
            assert taken.status == 204
        offer = await desktop.receive("offer")
        assert offer["reservation"]["interaction"]["body"] == "where is my order?"
        assert {(i["kind"], i["value"]) for i in offer["card"]["identities"]} >= {("phone", CUSTOMER)}

        conversation_id = offer["reservation"]["conversation_id"]
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        error = await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "x" * 161}, "error")
        assert error["error"]["field"] == "text"
        await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "on its way"}, "replied")
        assert [(m.to_address, m.from_address, m.body) for m in pigeon.sender.sent] == [(CUSTOMER, OURS, "on its way")]
        await desktop.close()


async def test_two_channels_serving_one_channels_replies_stop_the_start_naming_both(
    service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pigeon beside Twilio, both sending SMS replies: which one an agent's reply leaves by is no one's to guess.
    monkeypatch.setattr(host, "CHANNELS", (*host.CHANNELS, PigeonChannel()))
    with pytest.raises(ValueError, match=r"sms.*TwilioChannel.*PigeonChannel"):
        async with run_service(service_settings):
            pass
