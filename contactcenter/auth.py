"""Who is calling: the bootstrap admin (`CC_ADMIN_TOKEN`) or an agent (the token it got at creation)."""

from __future__ import annotations

import secrets

from aiohttp import web

from contactcenter.errors import Forbidden, Unauthorized
from contactcenter.store.directory import AgentProfile, Directory, token_bytes


def bearer_token(request: web.Request, *, allow_query: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a WebSocket handshake: the token may come as `?token=`.
    if allow_query and request.query.get("token"):
        return request.query["token"]
    raise Unauthorized("a bearer token is required (Authorization: Bearer ...)", field="Authorization")


class Authenticator:
    def __init__(self, admin_token: str | None, directory: Directory) -> None:
        self._admin_token = admin_token
        self._directory = directory

    def is_admin(self, token: str) -> bool:
        # Compared as bytes: `compare_digest` refuses str with non-ASCII characters, which any header may hold.
        admin = token_bytes(self._admin_token or "")
        return bool(admin) and secrets.compare_digest(token_bytes(token), admin)

    async def require_admin(self, request: web.Request) -> None:
        """The admin token: 401 for no token or an unknown one, 403 for an agent's (known, but not allowed)."""
        token = bearer_token(request)
        if self.is_admin(token):
            return
        if await self._directory.agent_by_token(token) is not None:
            raise Forbidden("this needs the admin token; an agent may not")
        raise Unauthorized("this needs the admin token")

    async def require_event_reader(self, request: web.Request) -> None:
        """Who may read the event log: the admin for now. Integration tokens (issue 15's webhooks part) are
        to be accepted here too — they may read events and nothing else."""
        await self.require_admin(request)

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
