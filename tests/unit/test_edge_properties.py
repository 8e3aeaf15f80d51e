"""Property tests of every parser at an edge, on arbitrary text and code points (NUL, controls, lone
surrogates, non-BMP) and bytes: only our `Invalid` or pydantic's `ValidationError` (both a 400) may come
out, and whatever is accepted PostgreSQL can store. Each test prints how many cases it ran (`pytest -s`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from channels.twilio.sms import inbound_sms
from contactcenter.errors import Invalid
from contactcenter.identities import normalise_phone
from schema import AgentCreate, QueueCreate, ReplyCommand
from schema.desktop import AGENT_COMMAND

CASES = 300
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
