"""Writes the answer to an error (`contactcenter.answers`) as HTTP: its status and `{"error": {"code", "message",
"field"?}}`; and reads JSON bodies into models, a bad one answered as `Invalid`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from contactcenter.answers import ANSWERED, answer_to, invalid_from
from contactcenter.errors import Invalid
from schema import ErrorBody, ErrorDetail

# `invalid_from` lives in `contactcenter.answers`; the channels still import it from here.
__all__ = ["error_middleware", "error_response", "invalid_from", "read_body"]

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}

Model = TypeVar("Model", bound=BaseModel)


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    headers = None
    if status == 503:
        headers = {"Retry-After": "1"}
    elif status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="contactcenter"'}  # RFC 6750: say which scheme to use
    return web.json_response(body.model_dump(exclude_none=True), status=status, headers=headers)


async def read_body(request: web.Request, model: type[Model]) -> Model:
    try:
        raw = await request.json()
    except (LookupError, UnicodeEncodeError):
        # aiohttp decodes the body with the Content-Type's `charset=`, which may name no codec at all.
        raise Invalid("the Content-Type names a charset we cannot read; send UTF-8", field="Content-Type") from None
    except ValueError:
        # Bad JSON, bytes that are not the charset's, and a number past Python's 4,300 digits (a plain ValueError).
        raise Invalid("the body is not valid JSON", field="body") from None
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
    except ANSWERED as exc:
        answer = answer_to(exc)
        # A client that hung up mid-request is no failure of ours (and an answer to it goes nowhere).
        client_left = isinstance(exc, ConnectionResetError) and request.transport is None
        if answer.logged and not client_left:
            log.warning("%s %s: %s", request.method, request.path, answer.log_line)
        return error_response(answer.status, answer.code, answer.message, answer.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, _HTTP_CODES.get(exc.status, "http_error"), exc.reason)
        if "Allow" in exc.headers:  # RFC 9110: a 405 names the methods the path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
