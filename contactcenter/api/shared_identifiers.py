"""Shared identifiers (admin): `GET /api/v1/shared-identifiers` lists the quarantined ones, `DELETE
/api/v1/shared-identifiers?kind=…&value=…` takes one out of quarantine (docs/cards.md, "Shared identifiers")."""

from __future__ import annotations

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from contactcenter.api.clients import query_limit
from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.errors import Invalid
from contactcenter.store.shared_identifiers import SharedIdentifierList
from schema.cards import SharedIdentifierReleased, SharedIdentifiers
from schema.text import Identifier

LIST_LIMIT, LIST_MAX = 100, 1000
KINDS = ("phone", "email")
LIST = Operation(
    "GET",
    "/api/v1/shared-identifiers",
    "listSharedIdentifiers",
    "Identifiers quarantined as shared (placeholders, and those met on more cards than allowed), newest first",
    {200: Answer("the quarantined identifiers", SharedIdentifiers), **failures(400, 401, 403, 503)},
    access=Access.ADMIN,
    parameters=(
        Parameter(
            "limit",
            "query",
            f"how many (default {LIST_LIMIT})",
            schema={"type": "integer", "minimum": 1, "maximum": LIST_MAX},
        ),
    ),
)
RELEASE = Operation(
    "DELETE",
    "/api/v1/shared-identifiers",
    "releaseSharedIdentifier",
    "Take an identifier out of quarantine: it may merge again, and detection leaves it alone from then on",
    {
        200: Answer("the identifier released", SharedIdentifierReleased),
        **failures(400, 401, 403, 404, 503, reasons={404: "the identifier is not quarantined"}),
    },
    access=Access.ADMIN,
    parameters=(
        Parameter("kind", "query", "`phone` or `email`", required=True, schema={"type": "string", "enum": list(KINDS)}),
        Parameter(
            "value",
            "query",
            "the kept form, as the list shows it",
            required=True,
            schema={"type": "string", "minLength": 1, "maxLength": 320},
        ),
    ),
)
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


class SharedIdentifiersApi:
    OPERATIONS = (LIST, RELEASE)

    def __init__(self, auth: Authenticator, shared: SharedIdentifierList) -> None:
        self._auth = auth
        self._shared = shared

    def routes(self) -> list[web.RouteDef]:
        return [LIST.route(self.list), RELEASE.route(self.release)]

    async def list(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        found = await self._shared.quarantined(query_limit(request.query.get("limit"), LIST_LIMIT, LIST_MAX))
        return web.json_response(SharedIdentifiers(shared_identifiers=found).model_dump(mode="json"))

    async def release(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        kind = request.query.get("kind", "")
        if kind not in KINDS:
            raise Invalid("`phone` or `email`", field="kind")
        released = await self._shared.release(kind, _value(request.query.get("value", "")), actor="admin")
        return web.json_response(released.model_dump(mode="json"))


def _value(raw: str) -> str:
    try:
        value = _IDENTIFIER.validate_python(raw)
    except ValidationError:
        raise Invalid("must not contain control characters, NUL or lone surrogates", field="value") from None
    if not value or len(value) > 320:
        raise Invalid("must hold 1 to 320 characters", field="value")
    return value
