"""`/api/v1/webhooks`: register a receiver for event types, list and delete them (the admin any, an integration
its own), and replay a webhook's parked deliveries (the admin)."""

from __future__ import annotations

import uuid

from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, Parameter, failures
from contactcenter.auth import Authenticator
from contactcenter.errors import Invalid
from contactcenter.http_errors import read_body
from contactcenter.webhooks.destinations import GuardedResolver
from contactcenter.webhooks.registry import Webhooks
from schema.webhooks import ReplayResult, WebhookCreate, WebhookCreated, WebhookList

WEBHOOK_ID = Parameter("webhook_id", "path", "the webhook's id", schema={"type": "string", "format": "uuid"})
REFUSED_URL = {400: "the input is invalid, or the URL's host is one webhooks may not reach; `field` names it"}

CREATE = Operation(
    "POST",
    "/api/v1/webhooks",
    "createWebhook",
    "Register a URL for the events whose routing key matches one of `types`; its signing secret is shown only "
    "in this answer",
    {
        201: Answer("the webhook and its secret", WebhookCreated),
        **failures(400, 401, 403, 408, 413, 503, reasons=REFUSED_URL),
    },
    access=Access.INTEGRATION,
    body=WebhookCreate,
)
LIST = Operation(
    "GET",
    "/api/v1/webhooks",
    "listWebhooks",
    "The webhooks the caller may see: an integration its own, the admin all",
    {200: Answer("the webhooks, oldest first, without their secrets", WebhookList), **failures(401, 403, 503)},
    access=Access.INTEGRATION,
)
DELETE = Operation(
    "DELETE",
    "/api/v1/webhooks/{webhook_id}",
    "deleteWebhook",
    "Delete a webhook and its deliveries",
    {204: Answer("deleted"), **failures(400, 401, 403, 404, 503)},
    access=Access.INTEGRATION,
    parameters=(WEBHOOK_ID,),
)
REPLAY = Operation(
    "POST",
    "/api/v1/webhooks/{webhook_id}/replay",
    "replayWebhook",
    "Send a webhook's parked deliveries again, in event order, with fresh retries; a suspended webhook is resumed",
    {200: Answer("how many were put back in line", ReplayResult), **failures(400, 401, 403, 404, 503)},
    access=Access.ADMIN,
    parameters=(WEBHOOK_ID,),
)


class WebhooksApi:
    OPERATIONS = (CREATE, LIST, DELETE, REPLAY)

    def __init__(self, auth: Authenticator, webhooks: Webhooks, guard: GuardedResolver) -> None:
        self._auth = auth
        self._webhooks = webhooks
        self._guard = guard

    def routes(self) -> list[web.RouteDef]:
        return [CREATE.route(self.create), LIST.route(self.list), DELETE.route(self.delete), REPLAY.route(self.replay)]

    async def create(self, request: web.Request) -> web.Response:
        integration = await self._auth.require_integration(request)
        body = await read_body(request, WebhookCreate)
        await self._guard.check_url(body.url)
        created = await self._webhooks.create(body, integration.id if integration else None)
        return web.json_response(created.model_dump(mode="json"), status=201)

    async def list(self, request: web.Request) -> web.Response:
        integration = await self._auth.require_integration(request)
        webhooks = await self._webhooks.visible_to(integration.id if integration else None)
        return web.json_response(WebhookList(webhooks=webhooks).model_dump(mode="json"))

    async def delete(self, request: web.Request) -> web.Response:
        integration = await self._auth.require_integration(request)
        await self._webhooks.delete(_webhook_id(request), integration.id if integration else None)
        return web.Response(status=204)

    async def replay(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        replayed = await self._webhooks.replay(_webhook_id(request))
        # `missed_after` only for a webhook that was suspended: the answer is otherwise as it always was.
        return web.json_response(replayed.model_dump(mode="json", exclude_none=True))


def _webhook_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["webhook_id"])
    except ValueError as exc:
        raise Invalid("the webhook id is not a UUID", field="webhook_id") from exc
