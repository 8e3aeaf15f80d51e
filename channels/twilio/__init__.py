"""Twilio: SMS (`sms`) and voice (`voice*`) — the signature every webhook carries (`signature`), the REST client
that sends replies (`rest`) and connects accepted calls (`voice_connect`). `TwilioChannel` is what the host
registers."""

from __future__ import annotations

from collections.abc import Sequence

from channels import ChannelContext, ChannelParts
from channels.twilio.rest import TwilioSmsSender
from channels.twilio.sms import SmsWebhook
from channels.twilio.sms_deliveries import SmsDeliveries
from channels.twilio.sms_status import SmsStatusWebhook, status_callback
from channels.twilio.voice import VoiceWebhook
from channels.twilio.voice_admin import VoiceAdminApi
from channels.twilio.voice_connect import CallConnector, TwilioCalls
from channels.twilio.voice_outbound import ClickToCall
from channels.twilio.voice_store import VoiceStore
from contactcenter.api.operations import Operation
from contactcenter.settings import Settings
from schema import Channel


class TwilioChannel:
    """SMS in through Twilio's webhook, out through its REST API; calls in through the voice webhooks,
    connected to the agent who accepts them through the REST API."""

    @property
    def operations(self) -> Sequence[Operation]:
        return (
            *SmsWebhook.OPERATIONS,
            *SmsStatusWebhook.OPERATIONS,
            *VoiceWebhook.OPERATIONS,
            *VoiceAdminApi.OPERATIONS,
            *ClickToCall.OPERATIONS,
        )

    def settings_problem(self, settings: Settings) -> str | None:
        return None  # its settings are checked where they are declared

    def parts(self, context: ChannelContext) -> ChannelParts:
        settings = context.settings
        account = {
            "api_base": settings.twilio_api_base,
            "account_sid": settings.twilio_account_sid,
            "auth_token": settings.twilio_auth_token.get_secret_value(),
        }
        sms = SmsWebhook(settings, context.publisher, context.admission, context.metrics)
        sms_status = SmsStatusWebhook(settings, SmsDeliveries(context.pool))
        store = VoiceStore(context.pool)
        voice = VoiceWebhook(
            settings, store, context.publisher, context.admission, context.metrics, context.withdrawals, context.calls
        )
        admin = VoiceAdminApi(settings, context.gatekeeper, store)
        calls = TwilioCalls(context.http, **account)
        click_to_call = ClickToCall(settings, context.gatekeeper, store, calls, context.calls)
        return ChannelParts(
            routes=[*sms.routes(), *sms_status.routes(), *voice.routes(), *admin.routes(), *click_to_call.routes()],
            senders={
                Channel.SMS: TwilioSmsSender(
                    context.http, **account, status_callback=status_callback(settings.public_url)
                )
            },
            answerers={Channel.VOICE: CallConnector(calls, store, context.calls, settings.public_url)},
        )
