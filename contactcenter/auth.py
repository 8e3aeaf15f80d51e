"""Who is calling: the bootstrap admin (`CC_ADMIN_TOKEN`) or an agent (the token it got at creation)."""

from __future__ import annotations

import secrets

from aiohttp import web

from contactcenter.errors import Unauthorized
from contactcenter.store.directory import AgentProfile, Directory


def bearer_token(request: web.Request, *, allow_query: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a WebSocket handshake: the token may come as `?token=`.
    if allow_query and request.query.get("token"):
        return request.query["token"]
    raise Unauthorized("a bearer token is required (Authorization: Bearer ...)")


class Authenticator:
    def __init__(self, admin_token: str | None, directory: Directory) -> None:
        self._admin_token = admin_token
        self._directory = directory

    def is_admin(self, token: str) -> bool:
        return bool(self._admin_token) and secrets.compare_digest(token, self._admin_token or "")

    def require_admin(self, request: web.Request) -> None:
        if not self.is_admin(bearer_token(request)):
            raise Unauthorized("this needs the admin token")

    async def require_agent(self, request: web.Request, *, allow_query: bool = False) -> AgentProfile:
        agent = await self._directory.agent_by_token(bearer_token(request, allow_query=allow_query))
        if agent is None:
            raise Unauthorized("unknown agent token")
        return agent

    async def require_staff(self, request: web.Request) -> None:
        """The admin or any agent."""
        token = bearer_token(request)
        if not self.is_admin(token) and await self._directory.agent_by_token(token) is None:
            raise Unauthorized("unknown token")
