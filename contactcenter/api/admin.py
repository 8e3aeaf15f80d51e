"""Admin endpoints: create queues and agents."""

from __future__ import annotations

from aiohttp import web

from contactcenter.api.operations import Access, Answer, Operation, failures
from contactcenter.auth import Authenticator
from contactcenter.http_errors import read_body
from contactcenter.store.directory import Directory
from schema import AgentCreate, AgentCreated, QueueCreate, QueueCreated

CREATE_QUEUE = Operation(
    "POST",
    "/api/v1/queues",
    "createQueue",
    "Create a queue; contacts on a channel go to the oldest queue that serves it",
    {201: Answer("the queue", QueueCreated), **failures(400, 401, 403, 408, 409, 413, 503)},
    access=Access.ADMIN,
    body=QueueCreate,
)
CREATE_AGENT = Operation(
    "POST",
    "/api/v1/agents",
    "createAgent",
    "Create an agent of existing queues; its token is shown only in this answer",
    {201: Answer("the agent and its token", AgentCreated), **failures(400, 401, 403, 408, 413, 503)},
    access=Access.ADMIN,
    body=AgentCreate,
)


class AdminApi:
    OPERATIONS = (CREATE_QUEUE, CREATE_AGENT)

    def __init__(self, auth: Authenticator, directory: Directory) -> None:
        self._auth = auth
        self._directory = directory

    def routes(self) -> list[web.RouteDef]:
        return [
            CREATE_QUEUE.route(self.create_queue),
            CREATE_AGENT.route(self.create_agent),
        ]

    async def create_queue(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        created = await self._directory.create_queue(await read_body(request, QueueCreate))
        return web.json_response(created.model_dump(mode="json"), status=201)

    async def create_agent(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        created = await self._directory.create_agent(await read_body(request, AgentCreate))
        return web.json_response(created.model_dump(mode="json"), status=201)
