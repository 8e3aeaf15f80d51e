"""`POST /api/v1/integrations` (admin): another system's identity, with a token that reads events and
manages that integration's webhooks — nothing else."""

from __future__ import annotations

from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, failures
from contactcenter.auth import Authenticator
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


class IntegrationsApi:
    OPERATIONS = (CREATE_INTEGRATION,)

    def __init__(self, auth: Authenticator, integrations: Integrations) -> None:
        self._auth = auth
        self._integrations = integrations

    def routes(self) -> list[web.RouteDef]:
        return [CREATE_INTEGRATION.route(self.create)]

    async def create(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        created = await self._integrations.create(await read_body(request, IntegrationCreate))
        return web.json_response(created.model_dump(mode="json"), status=201)
