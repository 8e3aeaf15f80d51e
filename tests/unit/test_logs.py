"""Log lines: JSON an operator's collector reads, the contact's ids on every line, no personal data."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from contactcenter.logs import (
    JsonFormatter,
    TextFormatter,
    choose_format,
    log_context,
    mask_email,
    mask_phone,
    scrub,
)


def _record(message: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("contactcenter.test", logging.WARNING, __file__, 1, message, args, None)
    if exc is not None:
        try:
            raise exc
        except BaseException as raised:
            record.exc_info = (type(raised), raised, raised.__traceback__)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+14155550134", "+1******0134"),
        ("+44 20 7946 0958", "+4*******0958"),
        ("(415) 555-0134", "******0134"),
        ("5550134", "*****34"),
    ],
)
def test_a_phone_number_shows_only_its_last_digits(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


def test_an_email_shows_its_first_letter_and_domain() -> None:
    assert mask_email("dana.scully@example.com") == "d***@example.com"


def test_scrub_masks_numbers_and_addresses_in_free_text_but_leaves_ids_and_counts() -> None:
    interaction = uuid.UUID("12345678-1234-4234-8234-123456789012")
    text = (
        f"duplicate key (phone, +14155550134) for {interaction}; not a phone number: '(415) 555-0134'; "
        "mail from dana@example.com; refused 1234 contacts from 10.0.0.1 in 10 s"
    )
    assert scrub(text) == (
        f"duplicate key (phone, +1******0134) for {interaction}; not a phone number: '******0134'; "
        "mail from d***@example.com; refused 1234 contacts from 10.0.0.1 in 10 s"
    )


def test_a_json_line_has_time_level_logger_message_and_the_context_fields() -> None:
    with log_context(interaction_id="i-1", provider_id="SM1", agent_id=None):
        line = json.loads(JsonFormatter().format(_record("offered to %s", "agent a-1", outcome="offered")))
    assert line["level"] == "WARNING"
    assert line["logger"] == "contactcenter.test"
    assert line["message"] == "offered to agent a-1"
    assert line["interaction_id"] == "i-1"
    assert line["provider_id"] == "SM1"
    assert line["outcome"] == "offered"
    assert "agent_id" not in line
    assert line["time"].endswith("+00:00")


def test_the_context_is_gone_after_its_block() -> None:
    with log_context(interaction_id="i-1"):
        pass
    line = json.loads(JsonFormatter().format(_record("later")))
    assert "interaction_id" not in line


def test_a_traceback_is_one_json_field_and_masked() -> None:
    line = json.loads(JsonFormatter().format(_record("failed", exc=ValueError("bad number +14155550134"))))
    assert "ValueError: bad number +1******0134" in line["exception"]
    assert "4155550134" not in json.dumps(line)


def test_the_text_format_reads_as_a_sentence_with_its_ids_after_it() -> None:
    with log_context(interaction_id="i-1"):
        text = TextFormatter().format(_record("sms from %s accepted", "+14155550134"))
    assert text.endswith("WARNING contactcenter.test: sms from +1******0134 accepted interaction_id=i-1")


def test_json_is_the_default_for_a_production_process_and_text_for_embedded_mode_or_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert choose_format(None, embedded=False, stream=io.StringIO()) == "json"
    assert choose_format(None, embedded=True, stream=io.StringIO()) == "text"
    assert choose_format(None, embedded=False, stream=Terminal()) == "text"
    assert choose_format("json", embedded=True, stream=Terminal()) == "json"
