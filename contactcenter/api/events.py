"""The event log for a consumer catching up (`GET /api/v1/events`) and the AsyncAPI document of the message
API (`GET /api/v1/asyncapi.json`)."""

from __future__ import annotations

import json

import asyncpg
from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.errors import Invalid
from contactcenter.events import outbox
from contactcenter.events.asyncapi import asyncapi_document
from schema.events import EventPage

MAX_PAGE = 1000
DEFAULT_PAGE = 100
# Bigint ids: past this, `after` cannot name one.
MAX_ID = 2**63 - 1

EVENTS = Operation(
    "GET",
    "/api/v1/events",
    "listEvents",
    "Events after an id, in id order: what a consumer that was away missed (the log keeps "
    "CC_EVENT_RETENTION_DAYS of them)",
    {200: Answer("a page of CloudEvents", EventPage), **failures(400, 401, 403, 503)},
    access=Access.INTEGRATION,
    parameters=(
        Parameter(
            "after",
            "query",
            "the last event id seen (0 or none: from the oldest kept)",
            schema={"type": "integer", "minimum": 0, "maximum": MAX_ID},
        ),
        Parameter(
            "limit",
            "query",
            f"at most this many events (default {DEFAULT_PAGE})",
            schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        ),
    ),
)
ASYNCAPI = Operation(
    "GET",
    "/api/v1/asyncapi.json",
    "getAsyncApi",
    "The AsyncAPI 3.0 document of the events and interactions exchanges",
    {200: Answer("the document", schema={"type": "object"})},
)


def _bounded_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise Invalid(f"{name} must be a whole number", field=name) from exc
    if not low <= value <= high:
        raise Invalid(f"{name} must be between {low} and {high}", field=name)
    return value


class EventsApi:
    OPERATIONS = (EVENTS, ASYNCAPI)

    def __init__(self, auth: Authenticator, pool: asyncpg.Pool, namespace: str) -> None:
        self._auth = auth
        self._pool = pool
        # Made once: the document only changes with the code.
        self._asyncapi = json.dumps(asyncapi_document(namespace))

    def routes(self) -> list[web.RouteDef]:
        return [EVENTS.route(self.events), ASYNCAPI.route(self.asyncapi)]

    async def events(self, request: web.Request) -> web.Response:
        await self._auth.require_event_reader(request)
        after = _bounded_int(request, "after", 0, 0, MAX_ID)
        limit = _bounded_int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        found = await outbox.page(self._pool, after, limit)
        return web.json_response(
            {
                "events": [event.envelope().model_dump(mode="json") for event in found],
                # Null on an empty page: ask again with the same `after` later.
                "next_after": found[-1].id if found else None,
            }
        )

    async def asyncapi(self, _request: web.Request) -> web.Response:
        return web.Response(text=self._asyncapi, content_type="application/json")
