"""Client cards: `GET /api/v1/clients/lookup?phone=…|email=…|visitor=…|external=…`, `GET /api/v1/clients/{id}`
and its timeline page by page (`…/timeline?cursor=…&channel=…`)."""

from __future__ import annotations

import uuid

from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.errors import Invalid, NotFound
from contactcenter.identities import identity_value
from contactcenter.store.cards import TIMELINE_LIMIT, TIMELINE_PAGE_MAX, Cards
from schema import Channel, ClientCard, IdentityKind
from schema.cards import TimelinePage

NONEMPTY = {"type": "string", "minLength": 1}  # an empty value counts as none given
CLIENT_ID = Parameter(
    "client_id",
    "path",
    "the client's id (a merged-away id answers as the survivor)",
    schema={"type": "string", "format": "uuid"},
)
# The identities a lookup may name, in the order they are read when several are given.
LOOKUP_KINDS = (IdentityKind.PHONE, IdentityKind.EMAIL, IdentityKind.VISITOR, IdentityKind.EXTERNAL)
LOOKUP = Operation(
    "GET",
    "/api/v1/clients/lookup",
    "lookupClient",
    "The card of the client holding an identity: a phone number, an email address, a chat visitor or an external id",
    {200: Answer("the card, timeline newest first", ClientCard), **failures(400, 401, 403, 404, 503)},
    access=Access.STAFF,
    parameters=(
        Parameter(
            "phone",
            "query",
            "a phone number in any common notation, read in CC_DEFAULT_REGION (one of the four is required)",
            schema=NONEMPTY,
        ),
        Parameter("email", "query", "an email address, read when no phone is given", schema=NONEMPTY),
        Parameter("visitor", "query", "a chat visitor's id", schema=NONEMPTY),
        Parameter("external", "query", "another system's customer number", schema=NONEMPTY),
    ),
)
BY_ID = Operation(
    "GET",
    "/api/v1/clients/{client_id}",
    "getClient",
    "A client's card",
    {200: Answer("the card, timeline newest first", ClientCard), **failures(400, 401, 403, 404, 503)},
    access=Access.STAFF,
    parameters=(CLIENT_ID,),
)
TIMELINE = Operation(
    "GET",
    "/api/v1/clients/{client_id}/timeline",
    "getClientTimeline",
    "A page of a card's timeline, newest first, from a cursor; of one channel or all",
    {200: Answer("the page and the next page's cursor", TimelinePage), **failures(400, 401, 403, 404, 503)},
    access=Access.STAFF,
    parameters=(
        CLIENT_ID,
        Parameter(
            "cursor", "query", "`next_cursor` of the page before (or the card's `timeline_next`)", schema=NONEMPTY
        ),
        Parameter("channel", "query", "only this channel's entries", schema={"type": "string", "enum": list(Channel)}),
        Parameter(
            "limit",
            "query",
            f"entries per page (default {TIMELINE_LIMIT})",
            schema={"type": "integer", "minimum": 1, "maximum": TIMELINE_PAGE_MAX},
        ),
    ),
)


class ClientsApi:
    OPERATIONS = (LOOKUP, BY_ID, TIMELINE)

    def __init__(self, auth: Authenticator, cards: Cards, default_region: str) -> None:
        self._auth = auth
        self._cards = cards
        self._default_region = default_region

    def routes(self) -> list[web.RouteDef]:
        return [
            LOOKUP.route(self.lookup),
            TIMELINE.route(self.timeline),
            BY_ID.route(self.by_id),
        ]

    async def lookup(self, request: web.Request) -> web.Response:
        await self._auth.require_staff(request)
        for kind in LOOKUP_KINDS:
            if raw := request.query.get(str(kind)):
                value = identity_value(kind, raw, self._default_region, field=str(kind))
                return card_response(await self._cards.by_identity(kind, value))
        raise Invalid("give ?phone=, ?email=, ?visitor= or ?external=", field="phone")

    async def by_id(self, request: web.Request) -> web.Response:
        await self._auth.require_staff(request)
        return card_response(await self._cards.by_id(client_id_of(request)))

    async def timeline(self, request: web.Request) -> web.Response:
        await self._auth.require_staff(request)
        client_id = client_id_of(request)
        channel = _channel(request.query.get("channel"))
        page = await self._cards.timeline(
            client_id,
            limit=query_limit(request.query.get("limit"), TIMELINE_LIMIT, TIMELINE_PAGE_MAX),
            cursor=request.query.get("cursor") or None,
            channel=channel,
        )
        if page is None:
            raise NotFound("no such client", field="client_id")
        return web.Response(text=page, content_type="application/json")


def client_id_of(request: web.Request, name: str = "client_id") -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError as exc:
        raise Invalid(f"the {name.replace('_', ' ')} is not a UUID", field=name) from exc


def card_response(card_json: str | None, status: int = 200) -> web.Response:
    """The card as the database rendered it: a `schema.ClientCard`."""
    if card_json is None:
        raise NotFound("no client with that identity", field=None)
    return web.Response(text=card_json, content_type="application/json", status=status)


def _channel(raw: str | None) -> Channel | None:
    if not raw:
        return None
    try:
        return Channel(raw)
    except ValueError:
        raise Invalid(f"one of: {', '.join(Channel)}", field="channel") from None


def query_limit(raw: str | None, default: int, most: int) -> int:
    """A `?limit=` from 1 to `most` in ASCII digits, `default` when none is given; else 400 naming `limit`."""
    if raw is None or raw == "":
        return default
    # The length first: Python will not read an integer of more than 4,300 digits (a ValueError, a 500).
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(most)) or not 1 <= int(raw) <= most:
        raise Invalid(f"an integer from 1 to {most}", field="limit")
    return int(raw)
