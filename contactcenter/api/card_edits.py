"""What agents change on a card: `PATCH /api/v1/clients/{id}` (profile, tags), `POST …/identities`,
`POST …/notes`. Each answers the card as it is now.

An identity another card holds is a 409 naming that card — except one the customer confirmed by a code
(`"verified": true`) that the other card holds verified: that is two proofs of one person, and the cards are
merged by themselves (`contactcenter/store/proofs.py`), the answer being the merged card. A claim never merges."""

from __future__ import annotations

from aiohttp import web

from contactcenter.api.clients import CLIENT_ID, card_response, client_id_of
from contactcenter.api.operations import Access, Answer, Operation, failures
from contactcenter.auth import Authenticator
from contactcenter.http_errors import read_body
from contactcenter.identities import identity_value
from contactcenter.store.card_edits import CardEdits, IdentityHeld, NewIdentity
from contactcenter.store.cards import Cards
from contactcenter.store.merges import Evidence
from contactcenter.store.proofs import ProvedIdentities
from schema import ClientCard, ErrorBody, ErrorDetail
from schema.cards import ClientPatch, IdentityCreate, NoteCreate

PATCH = Operation(
    "PATCH",
    "/api/v1/clients/{client_id}",
    "patchClient",
    "Edit a card's profile (the fields given replace those held; null clears one) and tags",
    {200: Answer("the card", ClientCard), **failures(400, 401, 403, 404, 408, 413, 503)},
    access=Access.STAFF,
    body=ClientPatch,
    parameters=(CLIENT_ID,),
)
ADD_IDENTITY = Operation(
    "POST",
    "/api/v1/clients/{client_id}/identities",
    "addClientIdentity",
    "Add an identity (phone, email, visitor, external id) to a card; 409 naming the card that holds it already",
    {
        201: Answer("the card with the identity", ClientCard),
        **failures(
            400,
            401,
            403,
            404,
            408,
            409,
            413,
            503,
            reasons={
                409: "another card holds the identity: the error's `client_id` names it, to merge (an identity "
                "confirmed by a code that the other card holds verified merges the two instead: 201, merged card)"
            },
        ),
    },
    access=Access.STAFF,
    body=IdentityCreate,
    parameters=(CLIENT_ID,),
)
ADD_NOTE = Operation(
    "POST",
    "/api/v1/clients/{client_id}/notes",
    "addClientNote",
    "Add an agent's note to a card",
    {201: Answer("the card with the note", ClientCard), **failures(400, 401, 403, 404, 408, 413, 503)},
    access=Access.STAFF,
    body=NoteCreate,
    parameters=(CLIENT_ID,),
)


class CardEditsApi:
    OPERATIONS = (PATCH, ADD_IDENTITY, ADD_NOTE)

    def __init__(
        self, auth: Authenticator, cards: Cards, edits: CardEdits, proofs: ProvedIdentities, default_region: str
    ) -> None:
        self._auth = auth
        self._cards = cards
        self._edits = edits
        self._proofs = proofs
        self._default_region = default_region

    def routes(self) -> list[web.RouteDef]:
        return [PATCH.route(self.patch), ADD_IDENTITY.route(self.add_identity), ADD_NOTE.route(self.add_note)]

    async def patch(self, request: web.Request) -> web.Response:
        await self._auth.require_staff(request)
        client_id = client_id_of(request)
        root = await self._edits.patch(client_id, await read_body(request, ClientPatch))
        return card_response(await self._cards.by_id(root))

    async def add_identity(self, request: web.Request) -> web.Response:
        actor = await self._auth.require_staff_actor(request)
        client_id = client_id_of(request)
        body = await read_body(request, IdentityCreate)
        value = identity_value(body.kind, body.value, self._default_region)
        try:
            root = await self._edits.add_identity(
                client_id, NewIdentity(body.kind, value, body.value, verified=body.verified)
            )
        except IdentityHeld as held:
            if body.verified:
                evidence = Evidence(str(body.kind), value, "agent_code", actor)
                merge = await self._proofs.merge_on_proof(client_id, held.holder, evidence)
                if merge is not None:
                    return card_response(await self._cards.by_id(merge.survivor_id), status=201)
            await self._proofs.sighted(body.kind, value, client_id, "agent_claim")
            detail = ErrorDetail(code=held.code, message=held.message, field=held.field, client_id=held.holder)
            return web.json_response(ErrorBody(error=detail).model_dump(mode="json", exclude_none=True), status=409)
        return card_response(await self._cards.by_id(root), status=201)

    async def add_note(self, request: web.Request) -> web.Response:
        author = await self._auth.require_staff_actor(request)
        client_id = client_id_of(request)
        body = await read_body(request, NoteCreate)
        root = await self._edits.add_note(client_id, body.body, author)
        return card_response(await self._cards.by_id(root), status=201)
