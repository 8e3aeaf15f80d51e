"""Reading Twilio's inbound SMS form: the few fields we use, every other field accepted."""

from __future__ import annotations

import pytest

from channels.twilio.sms import inbound_sms
from contactcenter.errors import Invalid
from schema import Channel


def test_the_message_sid_is_the_idempotency_key_and_extra_fields_are_accepted() -> None:
    form = {
        "MessageSid": "SM123",
        "From": "+14155550134",
        "To": "+15005550006",
        "Body": "hi",
        "SmsStatus": "received",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    interaction = inbound_sms(form, "US")
    assert interaction.channel is Channel.SMS
    assert interaction.provider_id == "SM123"
    assert (interaction.from_address, interaction.to_address, interaction.body) == (
        "+14155550134",
        "+15005550006",
        "hi",
    )
    assert interaction.from_verified


@pytest.mark.parametrize("missing", ["From", "MessageSid"])
def test_a_missing_required_field_is_named(missing: str) -> None:
    form = {"MessageSid": "SM123", "From": "+14155550134"}
    form[missing] = "  "
    with pytest.raises(Invalid) as refused:
        inbound_sms(form, "US")
    assert refused.value.field == missing
