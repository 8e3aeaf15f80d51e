"""The event catalogue's published forms: the JSON Schemas checked in under `docs/events/` are what the models
generate (`python -m schema.events` writes them), and the AsyncAPI 3.0 document holds together as the spec
requires, its payload schemas accepting the events the service publishes."""

from __future__ import annotations

import json
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema.exceptions import best_match
from pydantic import BaseModel

from contactcenter.events.asyncapi import asyncapi_document
from contactcenter.events.outbox import StoredEvent
from schema.events import BY_NAME, DOCS_FOLDER, EVENT_KINDS, SOURCE, TYPE_PREFIX, json_schemas, render


def test_the_checked_in_json_schemas_are_what_the_models_generate() -> None:
    generated = {name: render(schema) for name, schema in json_schemas().items()}
    checked_in = {
        str(path.relative_to(DOCS_FOLDER)): path.read_text(encoding="utf-8") for path in DOCS_FOLDER.rglob("*.json")
    }
    assert sorted(checked_in) == sorted(generated), "run `python -m schema.events` and commit docs/events/"
    for name, text in generated.items():
        assert checked_in[name] == text, f"docs/events/{name} is stale: run `python -m schema.events`"


def test_every_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    for schema in json_schemas().values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    found: Any = document
    for part in ref[2:].split("/"):
        found = found[part]
    return found


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
            ref for value in node.values() for ref in _refs(value)
        ]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def test_the_asyncapi_document_has_what_asyncapi_3_requires_and_every_reference_resolves() -> None:
    document = asyncapi_document("cc")
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and document["info"]["version"]
    for server in document["servers"].values():
        assert server["host"] and server["protocol"] == "amqp"
    assert {channel["address"] for channel in document["channels"].values()} == {"cc.events", "cc.interactions"}
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        # An operation's messages are its channel's (AsyncAPI 3.0, Operation Object).
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/")
    for ref in _refs(document):
        _resolve(document, ref)
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    names = set(document["channels"]["events"]["messages"])
    assert names == {kind.name.replace(".", "_") for kind in EVENT_KINDS}


ASYNCAPI_3_0_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "asyncapi-3.0.0.schema.json"


def test_the_asyncapi_document_is_valid_against_the_asyncapi_3_0_schema() -> None:
    """Found by this test: each event's message carried an AMQP binding the spec does not have (`deliveryMode`
    belongs to the operation's binding), which generators built on the official schema refuse."""
    validator = jsonschema.Draft7Validator(json.loads(ASYNCAPI_3_0_SCHEMA.read_text(encoding="utf-8")))
    document = asyncapi_document("cc")
    error = best_match(validator.iter_errors(document))
    assert error is None, f"{list(error.absolute_path)}: {error.message[:500]}"
    # The schema is strict enough to matter: AsyncAPI 2's verbs and a message without its payload's shape fail.
    wrong = asyncapi_document("cc")
    wrong["operations"]["publishInteraction"]["action"] = "publish"
    assert not validator.is_valid(wrong)
    wrong = asyncapi_document("cc")
    wrong["channels"]["events"]["address"] = 42
    assert not validator.is_valid(wrong)


@pytest.mark.parametrize("kind", EVENT_KINDS, ids=lambda kind: kind.name)
def test_each_message_payload_of_the_asyncapi_document_accepts_that_event_as_published(kind: Any) -> None:
    document = asyncapi_document("cc")
    payload = document["components"]["messages"][kind.name.replace(".", "_")]["payload"]
    validator = jsonschema.Draft202012Validator({**document, **payload})
    data = {name: _example(field.annotation) for name, field in kind.data.model_fields.items()}
    event = StoredEvent(42, kind.name, "subject", f"{kind.partition}:x", datetime.now(UTC), json.dumps(data))
    validator.validate(json.loads(event.body()))
    wrong = {**json.loads(event.body()), "data": {}}
    assert not validator.is_valid(wrong), "a payload without its data's fields must not pass"


def _example(annotation: Any) -> Any:
    text = str(annotation)
    # A nested model (perhaps `Model | None`): an example of each of its fields.
    for model in (annotation, *typing.get_args(annotation)):
        if isinstance(model, type) and issubclass(model, BaseModel):
            return {name: _example(field.annotation) for name, field in model.model_fields.items()}
    if text.startswith("list["):
        return [_example(annotation.__args__[0])]
    if "UUID" in text:
        return str(uuid.uuid4())
    if "datetime" in text:
        return datetime.now(UTC).isoformat()
    if annotation is int or text == "int | None":
        return 1
    if annotation is bool:
        return True
    if "Channel" in text:
        return "sms"
    if "Direction" in text:
        return "inbound"
    if "IdentityKind" in text:
        return "phone"
    if "Literal" in text:
        return _first_literal(annotation)
    return "x"


def _first_literal(annotation: Any) -> Any:
    """A value a Literal (perhaps `Literal[...] | None`) takes: its first."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)[0]
    return next(_first_literal(arg) for arg in typing.get_args(annotation) if "Literal" in str(arg))


@pytest.mark.parametrize(
    "occurred_at", [datetime(2026, 11, 30, 13, 14, 56, 512345, UTC), datetime(2026, 1, 2, tzinfo=UTC)]
)
def test_an_event_as_published_is_its_envelope_model(occurred_at: datetime) -> None:
    event = StoredEvent(1042, "client.created", "c", "client:c", occurred_at, '{"client_id": "c"}')
    assert json.loads(event.body()) == event.envelope().model_dump(mode="json")


@given(
    event_id=st.integers(1, 10**19),
    kind=st.sampled_from([*sorted(BY_NAME), "not.in.the.catalogue"]),
    subject=st.text(max_size=40),
    partition_key=st.text(max_size=60),
    occurred_at=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
)
def test_an_event_as_published_is_byte_for_byte_the_head_dumped_around_its_data(
    event_id: int, kind: str, subject: str, partition_key: str, occurred_at: datetime
) -> None:
    """The relay's hand-written head is what `json.dumps` wrote before it: a relay of either kind publishing the
    same event again publishes the same bytes."""
    data = '{"client_id": "c\\u00e9"}'
    event = StoredEvent(event_id, kind, subject, partition_key, occurred_at, data)
    known = BY_NAME.get(kind)
    head = {
        "specversion": "1.0",
        "id": str(event_id),
        "source": SOURCE,
        "type": TYPE_PREFIX + kind,
        "subject": subject,
        "time": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": known.dataschema if known else None,
        "partitionkey": partition_key,
        "sequence": f"{event_id:020d}",
    }
    dumped = json.dumps(head, separators=(",", ":"))[:-1] + ',"data":' + data + "}"
    assert event.body() == dumped.encode()
