"""Maps contactcenter's errors to HTTP answers, in one place: `{"error": {"code", "message", "field"?}}`."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError
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
from schema import ErrorBody, ErrorDetail

log = logging.getLogger(__name__)

STATUS: dict[type[ContactCenterError], int] = {
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    TimedOut: 408,
    Conflict: 409,
    TooLarge: 413,
    Unavailable: 503,
}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}

Model = TypeVar("Model", bound=BaseModel)

# A database, Redis or broker that went away under a request: the caller gets a 503 to retry, not a 500.
SERVICE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    headers = None
    if status == 503:
        headers = {"Retry-After": "1"}
    elif status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="contactcenter"'}  # RFC 6750: say which scheme to use
    return web.json_response(body.model_dump(exclude_none=True), status=status, headers=headers)


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


async def read_body(request: web.Request, model: type[Model]) -> Model:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid("the body is not valid JSON", field="body") from exc
    except RecursionError:
        raise Invalid("the body is nested too deep", field="body") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid_from(exc) from exc


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ContactCenterError as exc:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        if status == 503 and not isinstance(exc, Overloaded):
            log.warning("%s %s: %s", request.method, request.path, exc.message)
        return error_response(status, exc.code, exc.message, exc.field)
    except SERVICE_ERRORS as exc:
        # A client that hung up mid-request is no failure of ours (and an answer to it goes nowhere).
        if not (isinstance(exc, ConnectionResetError) and request.transport is None):
            log.warning("%s %s: a service we depend on failed: %s", request.method, request.path, type(exc).__name__)
        return error_response(503, Unavailable.code, "a service we depend on is unavailable; try again")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, _HTTP_CODES.get(exc.status, "http_error"), exc.reason)
        if "Allow" in exc.headers:  # RFC 9110: a 405 names the methods the path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
