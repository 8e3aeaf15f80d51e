"""SMS through Twilio: the inbound webhook `POST /channels/twilio/sms`.

The contact is acknowledged to Twilio (empty TwiML) only after the bus confirmed the interaction; when it
does not, Twilio gets a 503 and retries with the same MessageSid, which the router stores once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from channels.intake.admission import Admission
from channels.intake.publishing import InteractionPublisher
from channels.twilio.signature import (
    SIGNATURE_PARAMETER,
    WEBHOOK_FAILURES,
    TwilioSignature,
    required_field,
    twilio_form,
)
from contactcenter.answers import invalid_from
from contactcenter.api.operations import Answer, Operation
from contactcenter.identities import normalise_phone
from contactcenter.logs import log_context
from contactcenter.metrics import IntakeMetrics
from contactcenter.settings import Settings
from schema import Channel, IdentityKind, Interaction
from schema.text import storable

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# A refusal names the form's field, as Twilio's debugger shows it, not the interaction's.
_FORM_FIELDS = {"provider_id": "MessageSid", "from_address": "From", "to_address": "To", "body": "Body"}


class InboundSmsForm(BaseModel):
    """The fields of Twilio's form the webhook reads (`inbound_sms`), for the API's document. Twilio sends many
    more, all accepted as text."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str]

    MessageSid: str = Field(min_length=1, description="Twilio's id of the message: a retry carries the same")
    From: str = Field(min_length=1, description="the sender's phone number")
    To: str = ""
    Body: str = ""


RECEIVE = Operation(
    "POST",
    "/channels/twilio/sms",
    "receiveSms",
    "Twilio's inbound-message webhook; answered once the bus confirmed the contact",
    {
        200: Answer("taken in: empty TwiML", media_type="text/xml", schema={"type": "string"}),
        **WEBHOOK_FAILURES,
    },
    body=InboundSmsForm,
    body_media_type="application/x-www-form-urlencoded",
    parameters=(SIGNATURE_PARAMETER,),
)


def inbound_sms(form: Mapping[str, str], default_region: str) -> Interaction:
    """The interaction Twilio's form describes. Twilio sends many more fields than these: all are accepted.

    What PostgreSQL could not store is decided here, before Twilio hears a 200: an identifier with a NUL or
    another control character is refused (400 naming the field); the body keeps the customer's words, each
    NUL replaced by U+FFFD."""
    try:
        interaction = Interaction(
            channel=Channel.SMS,
            provider_id=required_field(form, "MessageSid"),
            from_address=required_field(form, "From"),
            sender_kind=IdentityKind.PHONE,
            to_address=form.get("To", ""),
            # The number comes from the carrier, not from the sender's own words.
            from_verified=True,
            body=storable(form.get("Body", "")),
            received_at=datetime.now(UTC),
        )
    except ValidationError as exc:
        raise invalid_from(exc, names=_FORM_FIELDS) from None
    normalise_phone(interaction.from_address, default_region)  # refuse what the router could never resolve
    return interaction


class SmsWebhook:
    OPERATIONS = (RECEIVE,)

    def __init__(
        self, settings: Settings, publisher: InteractionPublisher, admission: Admission, metrics: IntakeMetrics
    ) -> None:
        self._settings = settings
        self._signature = TwilioSignature(settings.twilio_auth_token.get_secret_value(), settings.public_url)
        self._publisher = publisher
        self._admission = admission
        self._metrics = metrics

    def routes(self) -> list[web.RouteDef]:
        return [RECEIVE.route(self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        with self._metrics.webhook(Channel.SMS):
            # The place is taken only for a signed contact: a caller who sends its body slowly, or signs
            # nothing, must not hold what Twilio's webhooks need (the body's deadline is the connection guard's).
            form = await twilio_form(request)
            self._signature.verify(request, form)
            interaction = inbound_sms(form, self._settings.default_region)
            with (
                self._admission.slot(),
                log_context(interaction_id=interaction.id, provider_id=interaction.provider_id),
            ):
                with self._metrics.publishing(Channel.SMS):
                    await self._publisher.publish(interaction)
                log.info("sms accepted: handed to the routers")
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
