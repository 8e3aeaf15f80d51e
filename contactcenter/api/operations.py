"""What an HTTP operation is, as the OpenAPI document tells it: declared once beside the handler that serves
it, which registers its route from the same declaration, so the document and the routes say the same."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from schema import ErrorBody

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JsonSchema = Mapping[str, object]


class Access(StrEnum):
    """Who may call an operation: the role its bearer token must carry."""

    ADMIN = "admin"  # the bootstrap token, CC_ADMIN_TOKEN
    AGENT = "agent"  # the token an agent got at its creation
    STAFF = "staff"  # either of them
    INTEGRATION = "integration"  # the admin, or an integration (another system) with the token it got at creation
    SUPERVISOR = "supervisor"  # the admin, or a supervisor (for the queues it supervises)
    VIEWER = "viewer"  # any of them: each sees the queues it may (a supervisor its own, an agent those it works)


@dataclass(frozen=True)
class Answer:
    """One documented response. A `model` describes a JSON body; `schema` what no model describes (TwiML)."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str = "application/json"
    schema: JsonSchema | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # name → what it says


@dataclass(frozen=True)
class Parameter:
    name: str
    location: Literal["path", "query", "header"]
    description: str
    required: bool = False
    schema: JsonSchema = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"]
    path: str  # aiohttp's pattern, which OpenAPI's `{name}` templates read as they are
    operation_id: str
    summary: str
    responses: Mapping[int, Answer]
    access: Access | None = None
    body: type[BaseModel] | None = None
    body_media_type: str = "application/json"
    parameters: tuple[Parameter, ...] = ()

    def route(self, handler: Handler) -> web.RouteDef:
        if self.method == "GET":
            return web.get(self.path, handler)  # HEAD too, as every aiohttp GET route answers it
        return web.route(self.method, self.path, handler)


_FAILURES = {
    400: "the input is invalid; `field` names the part at fault",
    401: "no bearer token, or one nobody holds",
    403: "the token's role may not do this",
    404: "nothing there",
    408: "the body did not arrive within CC_BODY_READ_SECONDS of the headers; the connection closes",
    409: "it conflicts with what exists; `field` names the part at fault",
    413: "the body is larger than this operation takes",
    503: "a service we depend on did not answer, or the process is at its bound: retry",
}


_FAILURE_HEADERS = {
    401: {"WWW-Authenticate": "`Bearer`: how to authenticate (RFC 6750)"},
    503: {"Retry-After": "seconds to wait before retrying"},
}


def failures(*statuses: int, reasons: Mapping[int, str] | None = None) -> dict[int, Answer]:
    """The error answers `contactcenter.http_errors` gives, as `ErrorBody`; `reasons` for what an operation
    means by one of them."""
    return {
        status: Answer(
            (reasons or {}).get(status, _FAILURES[status]),
            ErrorBody,
            headers=_FAILURE_HEADERS.get(status, {}),
        )
        for status in statuses
    }
