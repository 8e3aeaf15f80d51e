"""SMS through Twilio: the inbound webhook `POST /channels/twilio/sms`.

The contact is acknowledged to Twilio (empty TwiML) only after the bus confirmed the interaction; when it
does not, Twilio gets a 503 and retries with the same MessageSid, which the router stores once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web

from channels.admission import Admission
from channels.publishing import InteractionPublisher
from channels.twilio_signature import TwilioSignature, twilio_form
from contactcenter.errors import Invalid
from contactcenter.identities import normalise_phone
from contactcenter.settings import Settings
from schema import Channel, Interaction

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _required(form: Mapping[str, str], field: str) -> str:
    value = form.get(field, "").strip()
    if not value:
        raise Invalid(f"the form field {field} is required", field=field)
    return value


def inbound_sms(form: Mapping[str, str], default_region: str) -> Interaction:
    """The interaction Twilio's form describes. Twilio sends many more fields than these: all are accepted."""
    sender = _required(form, "From")
    normalise_phone(sender, default_region)  # refuse what the router could never resolve, at the edge
    return Interaction(
        channel=Channel.SMS,
        provider_id=_required(form, "MessageSid"),
        from_address=sender,
        to_address=form.get("To", ""),
        # The number comes from the carrier, not from the sender's own words.
        from_verified=True,
        body=form.get("Body", ""),
        received_at=datetime.now(UTC),
    )


class SmsWebhook:
    def __init__(self, settings: Settings, publisher: InteractionPublisher, admission: Admission) -> None:
        self._settings = settings
        self._signature = TwilioSignature(settings.twilio_auth_token.get_secret_value(), settings.public_url)
        self._publisher = publisher
        self._admission = admission

    async def receive(self, request: web.Request) -> web.Response:
        # The place is taken only for a signed contact: a caller who sends its body slowly, or signs nothing,
        # must not hold what Twilio's webhooks need (the body's deadline is the connection guard's).
        form = await twilio_form(request)
        self._signature.verify(request, form)
        interaction = inbound_sms(form, self._settings.default_region)
        with self._admission.slot():
            await self._publisher.publish(interaction)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")
