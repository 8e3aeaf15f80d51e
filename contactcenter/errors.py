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


class Unavailable(ContactCenterError):
    """A service we depend on (bus, database, Redis) did not answer in time; the caller may retry."""

    code = "unavailable"


class Overloaded(Unavailable):
    """We hold as much as we may and refuse more for now; the caller may retry. Whoever refuses logs a summary,
    so a flood of refusals is not a flood of log lines."""
