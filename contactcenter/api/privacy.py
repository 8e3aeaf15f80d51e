"""A client's personal data (admin): `GET /api/v1/clients/{id}/export`, `DELETE /api/v1/clients/{id}` (erase: the
database first, then the card's contacts waiting in live state are taken back, their offers revoked)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from contactcenter.api.clients import CLIENT_ID, card_response, client_id_of
from contactcenter.api.operations import Access, Answer, Operation, failures
from contactcenter.auth import Authenticator
from contactcenter.store.cards import Cards
from contactcenter.store.privacy import Privacy
from schema import Channel, ClientCard


class WaitingWithdrawal(Protocol):
    """Takes a waiting contact out of live state, its pending offer revoked (`contactcenter.agents.Withdrawals`)."""

    async def withdraw(self, channel: Channel, provider_id: str, *, abandoned: bool) -> object: ...


EXPORT = Operation(
    "GET",
    "/api/v1/clients/{client_id}/export",
    "exportClient",
    "Everything held about a client (and the cards merged into it) as one JSON document",
    {
        200: Answer(
            "the document: client, merged, identities, interactions, conversations, notes, merges",
            schema={"type": "object"},
        ),
        **failures(400, 401, 403, 404, 503),
    },
    access=Access.ADMIN,
    parameters=(CLIENT_ID,),
)
ERASE = Operation(
    "DELETE",
    "/api/v1/clients/{client_id}",
    "eraseClient",
    "Erase a client's personal data from every table and the events kept; its counts stay; audited",
    {200: Answer("the card as it is now: erased, its counts kept", ClientCard), **failures(400, 401, 403, 404, 503)},
    access=Access.ADMIN,
    parameters=(CLIENT_ID,),
)


class PrivacyApi:
    OPERATIONS = (EXPORT, ERASE)

    def __init__(self, auth: Authenticator, cards: Cards, privacy: Privacy, withdrawals: WaitingWithdrawal) -> None:
        self._auth = auth
        self._cards = cards
        self._privacy = privacy
        self._withdrawals = withdrawals

    def routes(self) -> list[web.RouteDef]:
        return [EXPORT.route(self.export), ERASE.route(self.erase)]

    async def export(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        document = await self._privacy.export(client_id_of(request))
        return web.Response(
            text=document,
            content_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="client.json"'},
        )

    async def erase(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        erased = await self._privacy.erase(client_id_of(request), actor="admin")
        # No agent is offered an erased card's contact: each waiting one leaves live state, as a contact that
        # left for other work does (not abandoned). A failure here answers 503; erasing again finishes it.
        for channel, provider_id in erased.waiting:
            await self._withdrawals.withdraw(Channel(channel), provider_id, abandoned=False)
        return card_response(await self._cards.by_id(erased.client_id))
