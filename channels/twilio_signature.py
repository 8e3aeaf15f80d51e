"""Checks `X-Twilio-Signature` the way Twilio computes it: over the public URL Twilio called and the form."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from twilio.request_validator import RequestValidator

from contactcenter.errors import Forbidden, Invalid


def public_url_of(request: web.Request, public_url: str | None) -> str:
    """Behind a proxy the URL the server sees is not the one Twilio signed: use `CC_PUBLIC_URL` + path."""
    if public_url:
        return public_url.rstrip("/") + request.path_qs
    return str(request.url)


def verify_twilio_signature(
    request: web.Request, form: Mapping[str, str], *, auth_token: str, public_url: str | None
) -> None:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        raise Forbidden("missing X-Twilio-Signature")
    if not auth_token:
        raise Forbidden("Twilio webhooks are refused: CC_TWILIO_AUTH_TOKEN is not set")
    validator = RequestValidator(auth_token)
    if not validator.validate(public_url_of(request, public_url), dict(form), signature):
        raise Forbidden("X-Twilio-Signature does not match")


async def twilio_form(request: web.Request) -> dict[str, str]:
    """The webhook's form fields. Twilio posts `application/x-www-form-urlencoded`, never files."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise Invalid("expected an application/x-www-form-urlencoded form", field="Content-Type")
    form = await request.post()
    return {key: value for key, value in form.items() if isinstance(value, str)}
