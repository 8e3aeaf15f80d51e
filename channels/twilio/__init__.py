"""Twilio: SMS today (`sms`), voice next — the signature every webhook carries (`signature`) and the REST
client that sends replies (`rest`). `TwilioChannel` is what the host registers."""

from __future__ import annotations

from collections.abc import Sequence

from channels import ChannelContext, ChannelParts
from channels.twilio.rest import TwilioSmsSender
from channels.twilio.sms import SmsWebhook
from contactcenter.api.operations import Operation
from schema import Channel


class TwilioChannel:
    """SMS in through Twilio's webhook, out through its REST API."""

    @property
    def operations(self) -> Sequence[Operation]:
        return SmsWebhook.OPERATIONS

    def parts(self, context: ChannelContext) -> ChannelParts:
        settings = context.settings
        webhook = SmsWebhook(settings, context.publisher, context.admission, context.metrics)
        sender = TwilioSmsSender(
            context.http,
            api_base=settings.twilio_api_base,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
        )
        return ChannelParts(routes=webhook.routes(), senders={Channel.SMS: sender})
