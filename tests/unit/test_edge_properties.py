"""Property tests of every parser at an edge, on arbitrary text and code points (NUL, controls, lone
surrogates, non-BMP) and bytes: only our `Invalid` or pydantic's `ValidationError` (both a 400) may come
out, and whatever is accepted PostgreSQL can store. The edges: Twilio's SMS and voice forms, phone numbers,
the desktop's frames, chat visitors' frames, and the JSON body of every operation of the HTTP API (mail has
its own, in test_mail_parsing.py). Each test prints how many cases it ran (`pytest -s`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from schemathesis.core.result import Ok

from channels.twilio.sms import inbound_sms
from channels.twilio.voice import STORED_FIELDS, _check_identifiers, call_interaction
from channels.webchat.visitors import _frame_from
from contactcenter.api.openapi import openapi_document
from contactcenter.errors import Invalid
from contactcenter.host.app import http_operations
from contactcenter.identities import normalise_phone
from schema import AgentCreate, QueueCreate, ReplyCommand
from schema.desktop import AGENT_COMMAND

CASES = 300
# Per JSON body of the API: fourteen of them, each a model pydantic checks in microseconds, but drawn by
# schemathesis from the document (slower to generate than to check).
BODY_CASES = 100
# Every code point, lone surrogates included, with the ones that broke things before drawn often.
CODE_POINTS = st.characters(exclude_categories=())
HOSTILE = st.sampled_from(["\x00", "\ud800", "\udfff", "\x1b", "\n", "\u202e", "\U0001f4a9", "\ufeff", "é"])
TEXT = st.text(st.one_of(CODE_POINTS, HOSTILE), max_size=40)
PHONE = st.from_regex(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True)
ANY_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def assert_storable(value: str) -> None:
    assert "\x00" not in value
    value.encode("utf-8")  # a lone surrogate cannot be encoded: UnicodeEncodeError fails the test


def run_cases(name: str, check: Callable[[], None], counter: list[int]) -> None:
    """Runs the property; `counter` is [cases, accepted], counted by it."""
    check()
    print(f"\n{name}: {counter[0]} cases, {counter[1]} accepted")  # the issue asks how many cases each edge took
    assert counter[0] > 0


def test_the_twilio_sms_form_builds_a_storable_interaction_or_is_invalid() -> None:
    counter = [0, 0]
    # A valid form with some of its fields replaced by anything: most cases get past the first field.
    valid = {"MessageSid": st.just("SM" + "a" * 32), "From": PHONE, "To": PHONE, "Body": st.text()}
    hostile = st.one_of(TEXT, st.text(max_size=400), TEXT.map(lambda t: "SM" + t), PHONE.map(lambda p: p + "\x00"))
    forms = st.fixed_dictionaries({name: st.one_of(field, field, hostile) for name, field in valid.items()}).flatmap(
        lambda known: st.dictionaries(TEXT, TEXT, max_size=3).map(lambda extra: extra | known)
    )

    @settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(form=forms)
    def check(form: dict[str, str]) -> None:
        counter[0] += 1
        try:
            interaction = inbound_sms(form, "US")
        except Invalid as refused:
            assert refused.field in {"MessageSid", "From", "To", "Body"}
            return
        counter[1] += 1
        for text in (interaction.provider_id, interaction.from_address, interaction.to_address, interaction.body):
            assert_storable(text)
        assert len(interaction.provider_id) <= 200 and len(interaction.to_address) <= 320
        assert len(interaction.body) <= 100_000

    run_cases("sms form", check, counter)


def test_phone_normalisation_answers_e164_or_invalid() -> None:
    counter = [0, 0]

    @settings(max_examples=CASES, deadline=None)
    @given(
        raw=st.one_of(TEXT, PHONE, PHONE.map(lambda p: p[:5] + "\x00" + p[5:])),
        region=st.sampled_from(["US", "GB", "ZZ", "", "é"]),
    )
    def check(raw: str, region: str) -> None:
        counter[0] += 1
        try:
            number = normalise_phone(raw, region)
        except Invalid as refused:
            assert refused.field == "From"
            return
        counter[1] += 1
        assert number.startswith("+") and number[1:].isdigit() and number.isascii()

    run_cases("phone numbers", check, counter)


def test_desktop_frames_parse_to_a_storable_command_or_a_validation_error() -> None:
    counter = [0, 0]
    frames = st.one_of(
        st.binary(max_size=80),
        TEXT,
        ANY_JSON.map(lambda value: json.dumps(value)),
        st.fixed_dictionaries({"type": st.just("reply"), "conversation_id": st.uuids().map(str), "text": TEXT}).map(
            lambda value: json.dumps(value)
        ),
    )

    @settings(max_examples=CASES, deadline=None)
    @given(frame=frames)
    def check(frame: str | bytes) -> None:
        counter[0] += 1
        try:
            command = AGENT_COMMAND.validate_json(frame)
        except ValidationError:
            return
        counter[1] += 1
        if isinstance(command, ReplyCommand):
            assert_storable(command.text)

    run_cases("desktop frames", check, counter)


@pytest.mark.parametrize("model", [AgentCreate, QueueCreate])
def test_api_bodies_validate_to_storable_text_or_a_validation_error(model: type[BaseModel]) -> None:
    counter = [0, 0]
    bodies = st.one_of(
        ANY_JSON,
        st.fixed_dictionaries({"name": TEXT, "queues": st.lists(st.one_of(TEXT, st.just("sales")), max_size=3)}),
        st.fixed_dictionaries({"name": TEXT, "queues": st.just(["sales"])}),
        st.fixed_dictionaries({"name": TEXT, "channels": st.lists(st.sampled_from(["sms", "voice", "x"]))}),
    )

    @settings(max_examples=CASES, deadline=None)
    @given(body=bodies)
    def check(body: Any) -> None:
        counter[0] += 1
        try:
            parsed = model.model_validate(body)
        except ValidationError:
            return
        counter[1] += 1
        for value in parsed.model_dump().values():
            for text in value if isinstance(value, list) else [value]:
                assert_storable(str(text))
        if isinstance(parsed, AgentCreate):
            assert parsed.name.strip() and len(parsed.queues) <= 100

    run_cases(f"{model.__name__} bodies", check, counter)


def _texts(value: Any) -> list[str]:
    """Every string in a dumped model: keys and values, however deep."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (*_texts(key), *_texts(item))]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return []


def test_the_twilio_voice_forms_build_a_storable_interaction_or_are_invalid() -> None:
    """What every voice webhook checks of a form (`_check_identifiers`), then the call's interaction from it."""
    counter = [0, 0]
    valid = {"CallSid": st.just("CA" + "b" * 32), "From": PHONE, "To": PHONE, "CallStatus": st.just("ringing")}
    hostile = st.one_of(TEXT, st.text(max_size=400), PHONE.map(lambda p: p + "\x00"), TEXT.map(lambda t: "CA" + t))
    more = st.sampled_from(["RecordingSid", "RecordingUrl", "QueueResult", "TranscriptionSid", "Digits", "X"])
    forms = st.fixed_dictionaries({name: st.one_of(field, field, hostile) for name, field in valid.items()}).flatmap(
        lambda known: st.dictionaries(more, TEXT, max_size=3).map(lambda extra: extra | known)
    )

    @settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(form=forms)
    def check(form: dict[str, str]) -> None:
        counter[0] += 1
        try:
            _check_identifiers(form)
            interaction = call_interaction(form, "US", provider_id=form["CallSid"].strip(), body="Phone call")
        except Invalid as refused:
            assert refused.field in {*STORED_FIELDS, "CallSid", "From", "To"}
            return
        counter[1] += 1
        for text in (interaction.provider_id, interaction.from_address, interaction.to_address):
            assert_storable(text)
            assert not any(ord(character) < 0x20 for character in text)

    run_cases("voice forms", check, counter)


def test_chat_visitor_frames_parse_to_storable_text_or_are_invalid() -> None:
    counter = [0, 0]
    frames = st.one_of(
        TEXT,
        ANY_JSON.map(json.dumps),
        st.fixed_dictionaries({"type": st.just("message"), "id": TEXT, "text": TEXT}).map(json.dumps),
        st.fixed_dictionaries(
            {"type": st.just("identify"), "name": TEXT, "email": TEXT, "phone": st.one_of(TEXT, PHONE)}
        ).map(json.dumps),
        st.fixed_dictionaries({"type": st.just("prove_email"), "code": TEXT}).map(json.dumps),
        # Lone surrogates written as JSON escapes, as a browser's JSON.stringify can send them.
        st.fixed_dictionaries({"type": st.just("message"), "id": st.just("m1"), "text": TEXT}).map(
            lambda frame: json.dumps(frame, ensure_ascii=True)
        ),
    )

    @settings(max_examples=CASES, deadline=None)
    @given(text=frames)
    def check(text: str) -> None:
        counter[0] += 1
        try:
            frame = _frame_from(text)
        except Invalid:
            return
        counter[1] += 1
        for value in _texts(frame.model_dump(mode="json")):
            assert_storable(value)

    run_cases("chat visitor frames", check, counter)


def _json_body_operations() -> dict[str, tuple[type[BaseModel], st.SearchStrategy[Any]]]:
    """Each operation of the HTTP API that takes a JSON body: its model, and schemathesis' valid bodies for it
    drawn from the OpenAPI document (offline: no request is sent)."""
    document = schemathesis.openapi.from_dict(openapi_document(http_operations()))
    models = {f"{op.method} {op.path}": op.body for op in http_operations() if op.body is not None}
    found: dict[str, tuple[type[BaseModel], st.SearchStrategy[Any]]] = {}
    for result in document.get_all_operations():
        assert isinstance(result, Ok), result  # the document is ours: schemathesis reads every operation of it
        operation = result.ok()
        if list(operation.definition.raw.get("requestBody", {}).get("content", {})) != ["application/json"]:
            continue
        valid = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
        found[operation.label] = (models[operation.label], valid.map(lambda case: case.body))
    return found


JSON_BODIES = _json_body_operations()


def _with_hostile_text(body: Any, text: str, which: int) -> Any:
    """`body` with one of its string values (the `which`-th, counted as they come) replaced by `text`."""
    strings = [0]

    def count(value: Any) -> None:
        if isinstance(value, str):
            strings[0] += 1
        for item in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
            count(item)

    count(body)
    if not strings[0]:
        return body
    target, seen = which % strings[0], -1

    def replace(value: Any) -> Any:
        nonlocal seen
        if isinstance(value, str):
            seen += 1
            return text if seen == target else value
        if isinstance(value, dict):
            return {key: replace(item) for key, item in value.items()}
        if isinstance(value, list):
            return [replace(item) for item in value]
        return value

    return replace(body)


@pytest.mark.parametrize("operation", sorted(JSON_BODIES))
def test_every_json_body_validates_to_storable_text_or_a_validation_error(operation: str) -> None:
    """Whatever an operation's body model accepts, PostgreSQL can store (no NUL, no lone surrogate, anywhere):
    valid bodies from the document with one string made hostile, and any JSON at all."""
    model, valid = JSON_BODIES[operation]
    counter = [0, 0]
    # The code points that broke storage before, inside ordinary text, as often as anything else.
    text = st.one_of(TEXT, st.tuples(TEXT, HOSTILE, TEXT).map("".join))
    hostile = st.builds(_with_hostile_text, valid, text, st.integers(min_value=0, max_value=20))

    @settings(
        max_examples=BODY_CASES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(body=st.one_of(hostile, hostile, valid, ANY_JSON))
    def check(body: Any) -> None:
        counter[0] += 1
        try:
            parsed = model.model_validate(body)
        except ValidationError:
            return
        counter[1] += 1
        for text in _texts(parsed.model_dump(mode="json")):
            assert_storable(text)

    run_cases(f"{operation} bodies", check, counter)
