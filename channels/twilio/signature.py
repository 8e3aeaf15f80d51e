"""Checks `X-Twilio-Signature` the way Twilio computes it: over the public URL Twilio called and the form."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import cast

from aiohttp import web
from multidict import MultiDictProxy, MultiMapping
from twilio.request_validator import RequestValidator

from contactcenter.api.operations import Answer, Parameter, failures
from contactcenter.errors import Forbidden, Invalid, TooLarge

# What every Twilio webhook's operation says of its signature and refusals, for the API's document.
SIGNATURE_PARAMETER = Parameter(
    "X-Twilio-Signature",
    "header",
    "Twilio's signature of CC_PUBLIC_URL + path and the form, with the account's auth token (else 403)",
    required=True,
)
WEBHOOK_FAILURES: dict[int, Answer] = failures(
    400, 403, 408, 413, 503, reasons={403: "X-Twilio-Signature is missing or wrong"}
)


def public_url_of(request: web.Request, public_url: str | None) -> str:
    """Behind a proxy the URL the server sees is not the one Twilio signed: use `CC_PUBLIC_URL` + path."""
    if public_url:
        return public_url.rstrip("/") + request.path_qs
    return str(request.url)


class TwilioSignature:
    """Checks `X-Twilio-Signature` with the account's auth token (none set: every webhook is refused)."""

    def __init__(self, auth_token: str, public_url: str | None) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        # The key's pads, worked out once: each webhook then costs the HMAC of its own text only.
        self._keyed = hmac.new(auth_token.encode(), digestmod=hashlib.sha1) if auth_token else None
        self._public_url = public_url

    def verify(self, request: web.Request, form: MultiMapping[str]) -> None:
        """Twilio signs every value of a field sent more than once: the form is checked as posted, each value
        read with `getall` (which is also the validator's quick path: a plain dict costs it two exceptions a
        field)."""
        signature = claimed_signature(request)
        if self._validator is None or self._keyed is None:
            raise Forbidden("Twilio webhooks are refused: CC_TWILIO_AUTH_TOKEN is not set")
        url = public_url_of(request, self._public_url)
        # One signature over the URL as we see it answers almost every webhook; `validate` then tries what
        # Twilio may also have signed (the URL with or without its port) — twice the HMACs, for the rest only.
        expected = signature_of(self._keyed, url, form)
        if not hmac.compare_digest(expected, signature) and not self._validator.validate(url, form, signature):
            raise Forbidden("X-Twilio-Signature does not match")


def signature_of(keyed: hmac.HMAC, url: str, form: MultiMapping[str]) -> str:
    """`RequestValidator.compute_signature` (HMAC-SHA1, what Twilio signs with) from the key's state."""
    mac = keyed.copy()
    mac.update(signed_text(url, form).encode())
    return base64.b64encode(mac.digest()).decode()


def signed_text(url: str, form: MultiMapping[str]) -> str:
    """What Twilio signs: the URL, then each field's name and value, names and each name's values sorted."""
    return url + "".join(name + value for name in sorted(set(form)) for value in sorted(set(form.getall(name))))


def claimed_signature(request: web.Request) -> str:
    """The signature the request claims. Twilio's is base64, ASCII: anything else is refused before it is
    compared (comparing non-ASCII text raises)."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        raise Forbidden("missing X-Twilio-Signature")
    if not signature.isascii():
        raise Forbidden("X-Twilio-Signature does not match")
    return signature


def required_field(form: Mapping[str, str], field: str) -> str:
    """A field the webhook cannot do without: missing or blank is a 400 naming it."""
    value = form.get(field, "").strip()
    if not value:
        raise Invalid(f"the form field {field} is required", field=field)
    return value


# Twilio's forms are a few KiB (an SMS of 1,600 characters and some forty other fields): more is not Twilio.
MAX_FORM_BYTES = 64 * 1024


async def twilio_form(request: web.Request) -> MultiDictProxy[str]:
    """The webhook's form fields, each value as posted. Twilio posts `application/x-www-form-urlencoded` in
    UTF-8, never files: every value of such a form is text.

    Read before the signature can be checked, so whatever cannot be Twilio's is a 403, as an unsigned post
    is: a post without a signature, another content type (JSON, multipart), a body that is not UTF-8. A form
    that announces more than `MAX_FORM_BYTES` is refused at once (413); a chunked one as it is read."""
    claimed_signature(request)
    if request.content_type != "application/x-www-form-urlencoded" or (request.charset or "utf-8").lower() not in (
        "utf-8",
        "utf8",
    ):
        raise Forbidden("Twilio signs UTF-8 application/x-www-form-urlencoded forms only", field="Content-Type")
    if request.content_length is None:
        request = request.clone(client_max_size=MAX_FORM_BYTES)  # chunked: counted as it is read
    elif request.content_length > MAX_FORM_BYTES:
        raise TooLarge(f"a Twilio form is at most {MAX_FORM_BYTES} bytes", field="body")
    try:
        return cast("MultiDictProxy[str]", await request.post())
    except web.HTTPRequestEntityTooLarge as exc:
        raise TooLarge(f"a Twilio form is at most {MAX_FORM_BYTES} bytes", field="body") from exc
    except UnicodeDecodeError:
        raise Forbidden("the form is not UTF-8: Twilio did not sign it") from None
