"""An agent's reply is bounded by the conversation's channel, not by the desktop: on SMS, Twilio's 1,600."""

from __future__ import annotations

from tests.running import FakeTwilioApi, RunningService

SENDER_E164 = "+14155550134"


async def test_an_sms_reply_past_1600_characters_gets_an_error_frame_naming_text_and_nothing_is_sent(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent()
    await service.post_sms(sender=SENDER_E164, body="Can you send me the whole contract?")
    offer = await desktop.receive("offer")
    conversation_id = offer["reservation"]["conversation_id"]
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")

    error = await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "x" * 1601}, "error")
    assert (error["error"]["code"], error["error"]["field"]) == ("invalid", "text")
    assert fake_twilio.sent == []

    # The same conversation goes on: a reply within the bound leaves.
    await desktop.command({"type": "reply", "conversation_id": conversation_id, "text": "x" * 1600}, "replied")
    assert [len(sent["Body"]) for sent in fake_twilio.sent] == [1600]
    await desktop.close()
