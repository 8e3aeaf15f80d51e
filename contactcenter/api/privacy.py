"""A client's personal data (admin): `GET /api/v1/clients/{id}/export`, `DELETE /api/v1/clients/{id}` (erase: the
database first, its open conversations closed with it, then their work taken out of live state — a waiting
contact's offer revoked, an agent who held one told and freed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from contactcenter.api.clients import CLIENT_ID, card_response, client_id_of
from contactcenter.api.operations import Access, Answer, Operation, failures
from contactcenter.auth import Authenticator
from contactcenter.store.cards import Cards
from contactcenter.store.privacy import Privacy
from contactcenter.store.releases import LiveRelease
from schema import ClientCard


class Releases(Protocol):
    """Takes the work of conversations the database closed out of live state (`contactcenter.agents.releases`)."""

    async def release(self, releases: Sequence[LiveRelease]) -> None: ...


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
    "Erase a client's personal data from every table and the events kept; its counts stay; its open conversations"
    " are closed (an agent holding one is told and freed); audited",
    {200: Answer("the card as it is now: erased, its counts kept", ClientCard), **failures(400, 401, 403, 404, 503)},
    access=Access.ADMIN,
    parameters=(CLIENT_ID,),
)


class PrivacyApi:
    OPERATIONS = (EXPORT, ERASE)

    def __init__(self, auth: Authenticator, cards: Cards, privacy: Privacy, releases: Releases) -> None:
        self._auth = auth
        self._cards = cards
        self._privacy = privacy
        self._releases = releases

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
        # Nobody works on an erased card: its conversations closed with it; their work leaves live state now. A
        # failure here answers 503; erasing again, or a router's sweep, finishes it (`live_releases`).
        await self._releases.release(erased.released)
        return card_response(await self._cards.by_id(erased.client_id))
