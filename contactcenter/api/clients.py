"""Client cards: `GET /api/v1/clients/lookup?phone=…|email=…` and `GET /api/v1/clients/{id}`."""

from __future__ import annotations

import uuid

from aiohttp import web

from contactcenter.auth import Authenticator
from contactcenter.errors import Invalid, NotFound
from contactcenter.identities import normalise_phone
from contactcenter.store.cards import Cards
from schema import IdentityKind


class ClientsApi:
    def __init__(self, auth: Authenticator, cards: Cards, default_region: str) -> None:
        self._auth = auth
        self._cards = cards
        self._default_region = default_region

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/clients/lookup", self.lookup),
            web.get("/api/v1/clients/{client_id}", self.by_id),
        ]

    async def lookup(self, request: web.Request) -> web.Response:
        await self._auth.require_staff(request)
        if phone := request.query.get("phone"):
            card = await self._cards.by_identity(
                IdentityKind.PHONE, normalise_phone(phone, self._default_region, field="phone")
            )
        elif email := request.query.get("email"):
            card = await self._cards.by_identity(IdentityKind.EMAIL, email.strip().lower())
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
