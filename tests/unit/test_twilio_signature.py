"""`X-Twilio-Signature`: one HMAC for the usual webhook, Twilio's other URL forms still accepted."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from channels.twilio.signature import TwilioSignature, signature_of
from contactcenter.errors import Forbidden

TOKEN = "12345678901234567890123456789012"
FORM = MultiDict({"MessageSid": "SM1", "From": "+14155550100", "Body": "Hello"})
PATH = "/channels/twilio/sms"


def _signed(url: str, token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, FORM)}


@pytest.mark.parametrize(
    "signed_url",
    ["https://cc.example.com/channels/twilio/sms", "https://cc.example.com:443/channels/twilio/sms"],
)
def test_a_signature_over_the_public_url_with_or_without_its_port_is_accepted(signed_url: str) -> None:
    request = make_mocked_request("POST", PATH, headers=_signed(signed_url))
    TwilioSignature(TOKEN, "https://cc.example.com").verify(request, FORM)


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({}, TOKEN),
        (_signed("https://cc.example.com/channels/twilio/sms", token="another token"), TOKEN),
        (_signed("https://elsewhere.example.com/channels/twilio/sms"), TOKEN),
        (_signed("https://cc.example.com/channels/twilio/sms"), ""),
    ],
    ids=["missing", "other token", "other url", "no token configured"],
)
def test_a_missing_or_wrong_signature_is_forbidden(headers: dict[str, str], token: str) -> None:
    request = make_mocked_request("POST", PATH, headers=headers)
    with pytest.raises(Forbidden):
        TwilioSignature(token, "https://cc.example.com").verify(request, FORM)


def test_a_changed_form_is_forbidden() -> None:
    request = make_mocked_request("POST", PATH, headers=_signed("https://cc.example.com/channels/twilio/sms"))
    with pytest.raises(Forbidden):
        TwilioSignature(TOKEN, "https://cc.example.com").verify(request, MultiDict({**FORM, "Body": "Goodbye"}))


def test_a_field_posted_twice_is_checked_over_both_values() -> None:
    """Twilio signs every value of a repeated field (e.g. several media URLs); a form read as a plain dict
    would keep one of them and refuse a genuine webhook forever."""
    form = MultiDict([*FORM.items(), ("MediaUrl", "https://media.example/1"), ("MediaUrl", "https://media.example/2")])
    url = "https://cc.example.com/channels/twilio/sms"
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)}
    TwilioSignature(TOKEN, "https://cc.example.com").verify(make_mocked_request("POST", PATH, headers=headers), form)
    changed = MultiDict([*FORM.items(), ("MediaUrl", "https://media.example/1"), ("MediaUrl", "https://evil.example")])
    with pytest.raises(Forbidden):
        TwilioSignature(TOKEN, "https://cc.example.com").verify(
            make_mocked_request("POST", PATH, headers=headers), changed
        )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=20)), max_size=8))
def test_the_quick_signature_is_twilios_for_any_form(fields: list[tuple[str, str]]) -> None:
    """The signature is worked out here from the key's HMAC state, not by Twilio's library (which re-keys it
    every call): it must be Twilio's for every form, repeated fields and any text included — were it not,
    every webhook would pay the library's fallback on top."""
    form = MultiDict(fields)
    url = "https://cc.example.com/channels/twilio/sms"
    keyed = hmac.new(TOKEN.encode(), digestmod=hashlib.sha1)
    assert signature_of(keyed, url, form) == RequestValidator(TOKEN).compute_signature(url, form)
    headers = {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form)}
    TwilioSignature(TOKEN, "https://cc.example.com").verify(make_mocked_request("POST", PATH, headers=headers), form)
