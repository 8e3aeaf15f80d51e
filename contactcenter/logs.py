"""Log lines an operator can follow: one JSON object per line (or readable text), each carrying the ids of the
contact it is about, and never a customer's phone number, address or words.

The ids ride along in a context variable (`log_context`): the SMS adapter sets the interaction's, the router
sets it again for each interaction it routes, the notices and the gateway for each offer or message they pass
on — so `grep <interaction id>` over every process's logs shows the contact's path. Asyncio copies the context
into each task, so one contact's ids never stick to another's lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal, TextIO

LogFormat = Literal["json", "text"]

_context: ContextVar[Mapping[str, str]] = ContextVar("log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add `fields` (ids, never personal data) to every line logged inside the block, in this task and the tasks
    it starts; a field given None is left out."""
    added = {name: str(value) for name, value in fields.items() if value is not None}
    token = _context.set({**_context.get(), **added})
    try:
        yield
    finally:
        _context.reset(token)


def add_log_context(**fields: object) -> None:
    """Add fields learnt along the way to the rest of the enclosing `log_context` block, which takes them
    away again at its end (call it only inside one, or they stay with the task)."""
    added = {name: str(value) for name, value in fields.items() if value is not None}
    _context.set({**_context.get(), **added})


def current_log_context() -> Mapping[str, str]:
    return _context.get()


def mask_phone(number: str) -> str:
    """`+14155550134` → `+1******0134`: enough to tell two numbers apart in an incident, not to call anyone."""
    digits = re.sub(r"\D", "", number)
    tail = 4 if len(digits) >= 10 else 2 if len(digits) >= 4 else 0
    head = 1 if number.lstrip().startswith("+") and len(digits) > tail + 1 else 0
    prefix = "+" + digits[:head] if head else ""
    return prefix + "*" * (len(digits) - head - tail) + digits[len(digits) - tail :]


def mask_email(address: str) -> str:
    """`dana@example.com` → `d***@example.com`."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


# A phone number as people and carriers write it: a `+` and digits, or seven digits or more with the usual
# separators (not dots, so that IP addresses stay readable). Not inside a word or a UUID (hex and dashes).
_PHONE = re.compile(r"(?<![\w\-+])(?:\+\d[\d\s()\-]{5,}\d|\(?\d[\d\s()\-]{5,}\d)(?![\w\-])")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _is_phone(candidate: str) -> bool:
    return sum(char.isdigit() for char in candidate) >= 7 and not _UUID.fullmatch(candidate)


def scrub(text: str) -> str:
    """Mask what looks like a phone number or an email address in free text: a safety net under code that
    logs only ids — an exception from a library may still quote the value it choked on."""
    if not any(char.isdigit() for char in text) and "@" not in text:
        return text  # most lines: nothing to look for
    text = _EMAIL.sub(lambda match: mask_email(match.group()), text)
    return _PHONE.sub(lambda match: mask_phone(match.group()) if _is_phone(match.group()) else match.group(), text)


# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field of the line.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = dict(_context.get())
    for name, value in record.__dict__.items():
        if name not in _RECORD_ATTRIBUTES:
            fields[name] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the context's and the call's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for name, value in _fields(record).items():
            line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: `time LEVEL logger: message key=value …`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = scrub(record.getMessage())
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.message}"
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{name}={value}" for name, value in fields.items())
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


def choose_format(configured: LogFormat | None, *, embedded: bool, stream: TextIO) -> LogFormat:
    """JSON for log collectors (production); text for a person (embedded mode, or a terminal)."""
    if configured is not None:
        return configured
    return "text" if embedded or stream.isatty() else "json"


def configure_logging(log_format: LogFormat, level: str, stream: TextIO = sys.stderr) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
