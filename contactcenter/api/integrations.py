"""`POST /api/v1/integrations` (admin): another system's identity, with a token that reads events and
manages that integration's webhooks — nothing else; `DELETE /api/v1/integrations/{id}` (admin) revokes it, its
webhooks with it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.errors import Invalid
from contactcenter.http_errors import read_body
from contactcenter.store.integrations import Integrations
from schema.webhooks import IntegrationCreate, IntegrationCreated

CREATE_INTEGRATION = Operation(
    "POST",
    "/api/v1/integrations",
    "createIntegration",
    "Create an integration (an ERP, a data warehouse): its token, shown only in this answer, reads events and "
    "manages its own webhooks",
    {201: Answer("the integration and its token", IntegrationCreated), **failures(400, 401, 403, 408, 413, 503)},
    access=Access.ADMIN,
    body=IntegrationCreate,
)

DELETE_INTEGRATION = Operation(
    "DELETE",
    "/api/v1/integrations/{integration_id}",
    "deleteIntegration",
    "Delete an integration: its token opens nothing any more, and its webhooks and their deliveries go with it",
    {204: Answer("deleted"), **failures(400, 401, 403, 404, 503)},
    access=Access.ADMIN,
    parameters=(
        Parameter("integration_id", "path", "the integration's id", schema={"type": "string", "format": "uuid"}),
    ),
)


class IntegrationsApi:
    OPERATIONS = (CREATE_INTEGRATION, DELETE_INTEGRATION)

    def __init__(
        self,
        auth: Authenticator,
        integrations: Integrations,
        delete_integration: Callable[[uuid.UUID], Awaitable[None]],
    ) -> None:
        self._auth = auth
        self._integrations = integrations
        # With its webhooks and their queue bindings (`webhooks.registry.Webhooks.delete_integration`).
        self._delete_integration = delete_integration

    def routes(self) -> list[web.RouteDef]:
        return [CREATE_INTEGRATION.route(self.create), DELETE_INTEGRATION.route(self.delete)]

    async def create(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        created = await self._integrations.create(await read_body(request, IntegrationCreate))
        return web.json_response(created.model_dump(mode="json"), status=201)

    async def delete(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        try:
            integration_id = uuid.UUID(request.match_info["integration_id"])
        except ValueError as exc:
            raise Invalid("the integration id is not a UUID", field="integration_id") from exc
        await self._delete_integration(integration_id)
        return web.Response(status=204)
