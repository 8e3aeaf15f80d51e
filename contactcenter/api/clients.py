"""Client cards: `GET /api/v1/clients/lookup?phone=…|email=…` and `GET /api/v1/clients/{id}`."""

from __future__ import annotations

import uuid

from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.errors import Invalid, NotFound
from contactcenter.identities import normalise_email, normalise_phone
from contactcenter.store.cards import Cards
from schema import ClientCard, IdentityKind

NONEMPTY = {"type": "string", "minLength": 1}  # an empty value counts as none given
LOOKUP = Operation(
    "GET",
    "/api/v1/clients/lookup",
    "lookupClient",
    "The card of the client holding a phone number or an email address",
    {200: Answer("the card, timeline newest first", ClientCard), **failures(400, 401, 403, 404, 503)},
    access=Access.STAFF,
    parameters=(
        Parameter(
            "phone",
            "query",
            "a phone number in any common notation, read in CC_DEFAULT_REGION (this or `email` is required)",
            schema=NONEMPTY,
        ),
        Parameter("email", "query", "an email address, read when no phone is given", schema=NONEMPTY),
    ),
)
BY_ID = Operation(
    "GET",
    "/api/v1/clients/{client_id}",
    "getClient",
    "A client's card",
    {200: Answer("the card, timeline newest first", ClientCard), **failures(400, 401, 403, 404, 503)},
    access=Access.STAFF,
    parameters=(Parameter("client_id", "path", "the client's id", schema={"type": "string", "format": "uuid"}),),
)


class ClientsApi:
    OPERATIONS = (LOOKUP, BY_ID)

    def __init__(self, auth: Authenticator, cards: Cards, default_region: str) -> None:
        self._auth = auth
        self._cards = cards
        self._default_region = default_region

    def routes(self) -> list[web.RouteDef]:
        return [
            LOOKUP.route(self.lookup),
            BY_ID.route(self.by_id),
        ]

    async def lookup(self, request: web.Request) -> web.Response:
        await self._auth.require_staff(request)
        if phone := request.query.get("phone"):
            card = await self._cards.by_identity(
                IdentityKind.PHONE, normalise_phone(phone, self._default_region, field="phone")
            )
        elif email := request.query.get("email"):
            card = await self._cards.by_identity(IdentityKind.EMAIL, normalise_email(email))
        else:
            raise Invalid("give ?phone= or ?email=", field="phone")
        return _card_response(card)

    async def by_id(self, request: web.Request) -> web.Response:
        await self._auth.require_staff(request)
        try:
            client_id = uuid.UUID(request.match_info["client_id"])
        except ValueError as exc:
            raise Invalid("the client id is not a UUID", field="client_id") from exc
        return _card_response(await self._cards.by_id(client_id))


def _card_response(card_json: str | None) -> web.Response:
    """The card as the database rendered it: a `schema.ClientCard`."""
    if card_json is None:
        raise NotFound("no client with that identity", field=None)
    return web.Response(text=card_json, content_type="application/json")
