"""Twilio's status callback for the SMS replies we send, `POST /channels/twilio/sms/status`: a reply delivered to
the customer's phone is told as `message.delivered`, one the carrier could not deliver as `message.undelivered`.

Twilio reports each step (`queued`, `sent`, ...); only the final ones are kept: `delivered`, `undelivered`,
`failed`. The callback may come before the reply it names is stored (Twilio's REST answer and its callback
cross): the report is stored at once and told as soon as the reply is; the callback waits for that a little.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.twilio.signature import SIGNATURE_PARAMETER, WEBHOOK_FAILURES, TwilioSignature, twilio_form
from channels.twilio.sms import EMPTY_TWIML
from channels.twilio.sms_deliveries import SmsDeliveries
from contactcenter.answers import invalid_from
from contactcenter.api.operations import Answer, Operation
from contactcenter.logs import log_context
from contactcenter.settings import Settings
from schema.text import Identifier

log = logging.getLogger(__name__)

STATUS_PATH = "/channels/twilio/sms/status"
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})
# When a callback looks again for the reply it names, if it was not stored yet: soon, then less and less often —
# seven lookups in about three seconds.
REPLY_LOOKS_SECONDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2)


class SmsStatusForm(BaseModel):
    """The fields of Twilio's message status callback the webhook reads; the others are accepted as text."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]

    MessageSid: Identifier = Field(min_length=1, max_length=200, description="the message's id (its `sid`)")
    MessageStatus: Identifier = Field(
        min_length=1, max_length=32, description="`delivered`, `undelivered` and `failed` are kept; others ignored"
    )
    ErrorCode: Identifier = Field("", max_length=16, description="Twilio's error code when it was not delivered")


STATUS = Operation(
    "POST",
    STATUS_PATH,
    "smsStatus",
    "Twilio's status callback for an SMS reply: delivered or not (`message.delivered`, `message.undelivered`)",
    {
        200: Answer(
            "kept (a step before the final one: ignored): empty TwiML", media_type="text/xml", schema={"type": "string"}
        ),
        **WEBHOOK_FAILURES,
    },
    body=SmsStatusForm,
    body_media_type="application/x-www-form-urlencoded",
    parameters=(SIGNATURE_PARAMETER,),
)


def status_callback(public_url: str | None) -> dict[str, str]:
    """What asks Twilio for a message's status callbacks. Twilio needs an absolute URL: without `CC_PUBLIC_URL`
    none is asked for, and replies are told sent, never delivered."""
    if not public_url:
        return {}
    return {"StatusCallback": public_url.rstrip("/") + STATUS_PATH}


def status_form(form: Mapping[str, str]) -> SmsStatusForm:
    try:
        return SmsStatusForm.model_validate({key: form[key] for key in form})
    except ValidationError as exc:
        raise invalid_from(exc) from None


class SmsStatusWebhook:
    OPERATIONS = (STATUS,)

    def __init__(self, settings: Settings, deliveries: SmsDeliveries) -> None:
        self._signature = TwilioSignature(settings.twilio_auth_token.get_secret_value(), settings.public_url)
        self._deliveries = deliveries

    def routes(self) -> list[web.RouteDef]:
        return [STATUS.route(self.status)]

    async def status(self, request: web.Request) -> web.Response:
        form = await twilio_form(request)
        self._signature.verify(request, form)
        report = status_form(form)
        status = report.MessageStatus.strip().lower()
        if status not in FINAL_STATUSES:
            return web.Response(text=EMPTY_TWIML, content_type="text/xml")
        sid = report.MessageSid.strip()
        with log_context(provider_id=sid):
            told = await self._deliveries.report(sid, status, report.ErrorCode.strip())
            for pause in REPLY_LOOKS_SECONDS:
                if told:
                    break
                await asyncio.sleep(pause)
                told = await self._deliveries.tell(sid)
            if told:
                log.info("sms status %s told", status)
            else:
                log.warning("sms status %s kept for a message we do not hold (yet): told when asked again", status)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
