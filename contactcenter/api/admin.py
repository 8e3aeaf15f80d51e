"""Admin endpoints: create queues and agents."""

from __future__ import annotations

from aiohttp import web

from contactcenter.auth import Authenticator
from contactcenter.http_errors import read_body
from contactcenter.store.directory import Directory
from schema import AgentCreate, QueueCreate


class AdminApi:
    def __init__(self, auth: Authenticator, directory: Directory) -> None:
        self._auth = auth
        self._directory = directory

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/queues", self.create_queue),
            web.post("/api/v1/agents", self.create_agent),
        ]

    async def create_queue(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        created = await self._directory.create_queue(await read_body(request, QueueCreate))
        return web.json_response(created.model_dump(mode="json"), status=201)

    async def create_agent(self, request: web.Request) -> web.Response:
        await self._auth.require_admin(request)
        created = await self._directory.create_agent(await read_body(request, AgentCreate))
        return web.json_response(created.model_dump(mode="json"), status=201)
