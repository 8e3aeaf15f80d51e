"""The errors of contactcenter, as values. They are mapped to HTTP, SMTP and socket answers in one place each."""

from __future__ import annotations


class ContactCenterError(Exception):
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(ContactCenterError):
    code = "invalid"


class Unauthorized(ContactCenterError):
    code = "unauthorized"


class Forbidden(ContactCenterError):
    code = "forbidden"


class NotFound(ContactCenterError):
    code = "not_found"


class Conflict(ContactCenterError):
    code = "conflict"


class TooLarge(ContactCenterError):
    """More than we read for this kind of request (413)."""

    code = "too_large"


class TimedOut(ContactCenterError, TimeoutError):
    """The client did not send its request within its deadline (408; the connection is closed). A TimeoutError
    too, so aiohttp's drain of the unread rest of a body takes it for the timeout it is and closes quietly."""

    code = "timeout"


class Unavailable(ContactCenterError):
    """A service we depend on (bus, database, Redis) did not answer in time; the caller may retry."""

    code = "unavailable"


class Overloaded(Unavailable):
    """We hold as much as we may and refuse more for now; the caller may retry. Whoever refuses logs a summary,
    so a flood of refusals is not a flood of log lines."""
