"""The seam between channels and the host: a channel says what its sender is and how long its replies may be;
nothing outside its package decides either from the channel's name."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from channels import ChannelAdapter, ChannelContext, ChannelParts
from channels.twilio import TwilioChannel
from channels.twilio.rest import TwilioSmsSender
from contactcenter.agents.outbound import OutboundMessage
from contactcenter.bus.interactions import inbound_message, read_inbound_message
from contactcenter.errors import Invalid
from contactcenter.host.app import CHANNELS, http_operations
from contactcenter.identities import sender_identity
from schema import Channel, IdentityKind, Interaction, ReplyCommand
from schema.desktop import AGENT_COMMAND
from schema.interactions import SENDER_KINDS_BEFORE_ISSUE_14


def _interaction(channel: Channel, kind: IdentityKind, sender: str) -> Interaction:
    return Interaction(
        channel=channel, provider_id="P1", from_address=sender, sender_kind=kind, received_at=datetime.now(UTC)
    )


def test_the_sender_is_resolved_by_the_kind_its_adapter_says_not_by_the_channel_name() -> None:
    # A chat visitor whose channel vouches for a phone number: a phone identity, normalised, not a visitor id.
    identity = sender_identity(_interaction(Channel.CHAT, IdentityKind.PHONE, "(415) 555-0134"), "US")
    assert (identity.kind, identity.value) == (IdentityKind.PHONE, "+14155550134")


def test_an_interaction_without_its_sender_kind_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        Interaction.model_validate(
            {"channel": "sms", "provider_id": "SM1", "from_address": "+14155550134", "received_at": datetime.now(UTC)}
        )
    assert refused.value.errors()[0]["loc"] == ("sender_kind",)


def test_a_message_published_before_interactions_said_their_sender_kind_is_read_with_its_channel_kind() -> None:
    # As an adapter of the release before wrote it, in flight during a rolling upgrade: one alone, several together.
    published = _interaction(Channel.SMS, IdentityKind.PHONE, "+14155550134")
    old = {k: v for k, v in json.loads(inbound_message([published])).items() if k != "sender_kind"}
    [alone] = read_inbound_message(json.dumps(old).encode())
    together = read_inbound_message(json.dumps([old, {**old, "provider_id": "P2"}]).encode())
    assert alone == published
    assert [i.sender_kind for i in together] == [IdentityKind.PHONE, IdentityKind.PHONE]


def test_what_is_no_interaction_is_still_refused_by_the_reader() -> None:
    with pytest.raises(ValidationError):
        read_inbound_message(b'{"channel": "sms"}')
    with pytest.raises(ValidationError):
        read_inbound_message(b"not json")


def test_the_desktop_takes_a_reply_longer_than_an_sms_the_channel_decides() -> None:
    long_reply = {"type": "reply", "conversation_id": str(uuid.uuid4()), "text": "x" * 5000}
    command = AGENT_COMMAND.validate_python(long_reply)
    assert isinstance(command, ReplyCommand) and command.text == "x" * 5000
    with pytest.raises(ValidationError):
        AGENT_COMMAND.validate_python({**long_reply, "text": "x" * 100_001})


async def test_an_sms_reply_past_1600_characters_is_refused_naming_text_before_twilio_hears_of_it() -> None:
    async with aiohttp.ClientSession() as http:
        # Nothing listens there: a sender that tried would answer `Unavailable`, not `Invalid`.
        sender = TwilioSmsSender(http, api_base="http://127.0.0.1:9", account_sid="AC1", auth_token="t")
        with pytest.raises(Invalid) as refused:
            await sender.send(OutboundMessage(to_address="+14155550134", from_address="+15005550006", body="x" * 1601))
    assert refused.value.field == "text"
    assert sender.max_length == 1600


def test_the_twilio_package_brings_its_webhook_operations_and_the_host_registers_them_from_its_list() -> None:
    channel: ChannelAdapter = TwilioChannel()
    contract = [
        ("POST", "/channels/twilio/sms"),
        ("POST", "/channels/twilio/voice"),
        ("POST", "/channels/twilio/voice/status"),
    ]
    brought = [(op.method, op.path) for op in channel.operations]
    assert all(operation in brought for operation in contract)
    # Every voice webhook Twilio is told to call lies under the contract's path.
    assert all(
        path.startswith("/channels/twilio/voice") for _, path in brought if "voice" in path and "/api/" not in path
    )
    assert any(isinstance(registered, TwilioChannel) for registered in CHANNELS)
    registered = [(op.method, op.path) for op in http_operations()]
    assert all(operation in registered for operation in contract)


ADDING_A_CHANNEL = Path(__file__).resolve().parents[2] / "docs" / "adding-a-channel.md"


def test_the_recipe_names_everything_the_host_lends_and_a_channel_adds() -> None:
    # The page a newcomer reads to add a channel: what it does not name, a newcomer does not know is there.
    page = ADDING_A_CHANNEL.read_text(encoding="utf-8")
    unnamed = [
        f"{seam.__name__}.{part.name}"
        for seam in (ChannelContext, ChannelParts)
        for part in dataclasses.fields(seam)
        if f"`{part.name}`" not in page
    ]
    assert unnamed == []


def test_the_recipe_lists_every_module_of_its_worked_example_and_the_hosts_list_as_it_is() -> None:
    page = ADDING_A_CHANNEL.read_text(encoding="utf-8")
    example = Path(__file__).resolve().parents[2] / "channels" / "twilio"
    unlisted = [module.name for module in sorted(example.glob("*.py")) if f"  {module.name} " not in page]
    assert unlisted == []
    [line] = [line for line in page.splitlines() if line.startswith("CHANNELS: ")]
    assert line in (example.parents[1] / "contactcenter" / "host" / "app.py").read_text(encoding="utf-8")


def test_every_channel_has_the_sender_kind_its_stored_interactions_are_read_back_with() -> None:
    # The interactions table does not keep `sender_kind` (docs/adding-a-channel.md, "What reaches outside the
    # folder"): a new word in `Channel` without its line there would fail reading its contacts back, not here.
    assert set(SENDER_KINDS_BEFORE_ISSUE_14) == set(Channel)
