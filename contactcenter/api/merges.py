"""Merging cards and undoing it: `POST /api/v1/clients/{id}/merge {"from": other}`, `DELETE /api/v1/merges/{id}`."""

from __future__ import annotations

import uuid

from aiohttp import web

from contactcenter.api.clients import CLIENT_ID, client_id_of
from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.errors import NotFound
from contactcenter.http_errors import read_body
from contactcenter.store.cards import Cards
from contactcenter.store.merges import Merges
from schema.cards import MergeCreate, MergeDone, MergeUndone

MERGE = Operation(
    "POST",
    "/api/v1/clients/{client_id}/merge",
    "mergeClients",
    "Merge another card into this one: the survivor's card shows both histories; the other id answers with it",
    {
        200: Answer("the merge's id (to undo it) and the survivor's card", MergeDone),
        **failures(400, 401, 403, 404, 408, 409, 413, 503, reasons={409: "the two are one card already"}),
    },
    access=Access.STAFF,
    body=MergeCreate,
    parameters=(CLIENT_ID,),
)
UNDO = Operation(
    "DELETE",
    "/api/v1/merges/{merge_id}",
    "undoMerge",
    "Undo a merge: both cards as they were, each with what arrived since on its own identities",
    {
        200: Answer("both cards", MergeUndone),
        **failures(400, 401, 403, 404, 409, 503, reasons={409: "the merge was undone already"}),
    },
    access=Access.STAFF,
    parameters=(Parameter("merge_id", "path", "the id a merge answered", schema={"type": "string", "format": "uuid"}),),
)


class MergesApi:
    OPERATIONS = (MERGE, UNDO)

    def __init__(self, auth: Authenticator, cards: Cards, merges: Merges) -> None:
        self._auth = auth
        self._cards = cards
        self._merges = merges

    def routes(self) -> list[web.RouteDef]:
        return [MERGE.route(self.merge), UNDO.route(self.undo)]

    async def merge(self, request: web.Request) -> web.Response:
        actor = await self._auth.require_staff_actor(request)
        survivor = client_id_of(request)
        body = await read_body(request, MergeCreate)
        merge = await self._merges.merge(survivor, body.from_id, actor=actor, reason=body.reason)
        card = await self._card(merge.survivor_id)
        return _json(f'{{"merge_id": "{merge.id}", "card": {card}}}')

    async def undo(self, request: web.Request) -> web.Response:
        actor = await self._auth.require_staff_actor(request)
        merge = await self._merges.undo(client_id_of(request, "merge_id"), actor=actor)
        survivor, restored = await self._card(merge.survivor_id), await self._card(merge.merged_id)
        return _json(f'{{"merge_id": "{merge.id}", "survivor": {survivor}, "restored": {restored}}}')

    async def _card(self, client_id: uuid.UUID) -> str:
        card = await self._cards.by_id(client_id)
        if card is None:
            raise NotFound("no such client", field="client_id")
        return card


def _json(text: str) -> web.Response:
    """An envelope around cards the database rendered as JSON (not parsed and written again)."""
    return web.Response(text=text, content_type="application/json")
