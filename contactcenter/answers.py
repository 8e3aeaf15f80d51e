"""What we answer to an exception, whatever the protocol: the one table from our errors, pydantic's and the
infrastructure's to a status, a code, a message and a field. HTTP (`http_errors`), the agent socket
(`agents.gateway`) and SMTP each only write that answer in their own form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contactcenter.errors import (
    Conflict,
    ContactCenterError,
    Forbidden,
    Invalid,
    NotFound,
    Overloaded,
    TimedOut,
    TooLarge,
    Unauthorized,
    Unavailable,
)

# A database, Redis or broker that went away under a request: the caller is told to retry, and nothing of ours
# failed. Listed here only.
SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    # What asyncpg raises on a connection PostgreSQL cut in the middle of its protocol (a restart): "cannot
    # switch to state …; another operation is in progress". The pool replaces the connection; a retry works.
    asyncpg.InternalClientError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)
# Everything `answer_to` answers: what an edge catches around the work it does for a caller.
ANSWERED: tuple[type[BaseException], ...] = (ContactCenterError, ValidationError, *SERVICE_ERRORS)

SERVICE_FAILED = "a service we depend on is unavailable; try again"


@dataclass(frozen=True, slots=True)
class ReplyCodes:
    """How HTTP and SMTP say one kind of refusal (the socket says its `code`)."""

    http: int
    # RFC 5321's reply codes: 4xx the sender retries, 5xx it gives up and bounces.
    smtp: int


# The first class an error is an instance of answers it: a subclass goes before its base (Overloaded before
# Unavailable). Ours are matched before the infrastructure's, so TimedOut, a TimeoutError too, is a 408.
REPLY_CODES: dict[type[ContactCenterError], ReplyCodes] = {
    Invalid: ReplyCodes(400, 501),  # syntax error in parameters
    Unauthorized: ReplyCodes(401, 530),  # authentication required (RFC 4954)
    Forbidden: ReplyCodes(403, 550),  # mailbox unavailable / not allowed
    NotFound: ReplyCodes(404, 550),
    TimedOut: ReplyCodes(408, 421),  # RFC 5321 §4.5.3.2: a server that times out closes with 421
    Conflict: ReplyCodes(409, 554),  # transaction failed
    TooLarge: ReplyCodes(413, 552),  # exceeded storage allocation (the size limit)
    Overloaded: ReplyCodes(503, 451),  # local error in processing: try again later
    Unavailable: ReplyCodes(503, 451),
}
# One of ours not in the table (a new subclass of `ContactCenterError` itself): the caller asked for something
# we refuse, permanently.
OTHERWISE = ReplyCodes(400, 554)
SERVICE_FAILURE = REPLY_CODES[Unavailable]


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """A refusal as every protocol answers it. `log_line` is set when it tells of a failure on our side (a
    service we depend on): what to log then, never the caller's input nor a service's own message (which may
    hold a URL with its credentials, or a customer's data)."""

    status: int
    code: str
    message: str
    field: str | None
    smtp: int
    log_line: str | None = None

    @property
    def logged(self) -> bool:
        return self.log_line is not None


def answer_to(exc: BaseException) -> ErrorAnswer:
    """The answer to one of `ANSWERED`."""
    if isinstance(exc, ValidationError):
        exc = invalid_from(exc)
    if isinstance(exc, ContactCenterError):
        codes = next((codes for kind, codes in REPLY_CODES.items() if isinstance(exc, kind)), OTHERWISE)
        # Whoever refuses as overloaded logs a summary itself, so a flood of refusals is no flood of lines.
        failed = isinstance(exc, Unavailable) and not isinstance(exc, Overloaded)
        return ErrorAnswer(codes.http, exc.code, exc.message, exc.field, codes.smtp, exc.message if failed else None)
    if isinstance(exc, SERVICE_ERRORS):
        line = f"a service we depend on failed: {type(exc).__name__}"
        return ErrorAnswer(SERVICE_FAILURE.http, Unavailable.code, SERVICE_FAILED, None, SERVICE_FAILURE.smtp, line)
    raise TypeError(f"no answer to {type(exc).__name__}") from exc


def invalid_from(exc: ValidationError, *, tagged: bool = False, names: Mapping[str, str] | None = None) -> Invalid:
    """The first problem, naming its field (as the caller knows it: `names` maps a model's field to it). In a
    `tagged` union the location starts with the tag: drop it. Pydantic's message only, never the input."""
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = first["loc"][1:] if tagged else first["loc"]
    if loc and names:
        loc = (names.get(str(loc[0]), loc[0]), *loc[1:])
    field = ".".join(str(part) for part in loc) or None
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field = "type"
    return Invalid(f"{field + ': ' if field else ''}{first['msg']}", field=field)
