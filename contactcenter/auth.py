"""Who is calling: the bootstrap admin (`CC_ADMIN_TOKEN`), an agent (the token it got at creation), a supervisor
(the token it got at creation: it watches and acts on the queues it supervises) or an integration (another
system, with the token it got at creation: it reads events and manages its webhooks)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from aiohttp import web

from contactcenter.errors import Forbidden, Unauthorized
from contactcenter.store.directory import AgentProfile, Directory, token_bytes
from contactcenter.store.integrations import Integration, Integrations


def bearer_token(request: web.Request, *, allow_query: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on a WebSocket handshake: the token may come as `?token=`.
    if allow_query and request.query.get("token"):
        return request.query["token"]
    raise Unauthorized("a bearer token is required (Authorization: Bearer ...)", field="Authorization")


@dataclass(frozen=True)
class Viewer:
    """Who watches queues' figures: `queue_ids` are the queues it may see (None: every queue), `person_id` the
    supervisor or agent (None for the admin and integrations)."""

    role: str  # admin | supervisor | agent | integration
    queue_ids: frozenset[uuid.UUID] | None
    person_id: uuid.UUID | None = None

    def sees(self, queue_id: uuid.UUID) -> bool:
        return self.queue_ids is None or queue_id in self.queue_ids


class Authenticator:
    def __init__(self, admin_token: str | None, directory: Directory, integrations: Integrations) -> None:
        self._admin_token = admin_token
        self._directory = directory
        self._integrations = integrations

    def is_admin(self, token: str) -> bool:
        # Compared as bytes: `compare_digest` refuses str with non-ASCII characters, which any header may hold.
        admin = token_bytes(self._admin_token or "")
        return bool(admin) and secrets.compare_digest(token_bytes(token), admin)

    async def require_admin(self, request: web.Request) -> None:
        """The admin token: 401 for no token or an unknown one, 403 for an agent's or an integration's (known,
        but not allowed)."""
        token = bearer_token(request)
        if self.is_admin(token):
            return
        if await self._directory.agent_by_token(token) is not None:
            raise Forbidden("this needs the admin token; an agent may not")
        await self._refuse_integration(token, "the admin token")
        raise Unauthorized("this needs the admin token")

    async def require_event_reader(self, request: web.Request) -> None:
        """Who may read the event log: the admin or an integration (which may read events and manage its own
        webhooks, nothing else)."""
        await self.require_integration(request)

    async def require_agent(self, request: web.Request, *, allow_query: bool = False) -> AgentProfile:
        token = bearer_token(request, allow_query=allow_query)
        agent = await self._directory.agent_by_token(token)
        if agent is None:
            await self._refuse_integration(token, "an agent's token")
            raise Unauthorized("unknown agent token")
        return agent

    async def require_staff(self, request: web.Request) -> None:
        """The admin or any agent."""
        token = bearer_token(request)
        if not self.is_admin(token) and await self._directory.agent_by_token(token) is None:
            await self._refuse_integration(token, "the admin's or an agent's token")
            raise Unauthorized("unknown token")

    async def require_staff_actor(self, request: web.Request) -> str:
        """The admin or any agent, named as an audit trail names them: `admin` or `agent:<id>`."""
        token = bearer_token(request)
        if self.is_admin(token):
            return "admin"
        agent = await self._directory.agent_by_token(token)
        if agent is None:
            await self._refuse_integration(token, "the admin's or an agent's token")
            raise Unauthorized("unknown token")
        return f"agent:{agent.id}"

    async def require_integration(self, request: web.Request) -> Integration | None:
        """What an integration may do (read events, manage its own webhooks), which the admin may do too: the
        calling integration, or None for the admin. 403 for an agent's token, 401 for an unknown one."""
        token = bearer_token(request)
        if self.is_admin(token):
            return None
        integration = await self._integrations.by_token(token)
        if integration is not None:
            return integration
        if await self._directory.agent_by_token(token) is not None:
            raise Forbidden("this needs the admin's or an integration's token; an agent may not")
        if await self._directory.supervisor_by_token(token) is not None:
            raise Forbidden("this needs the admin's or an integration's token; a supervisor may not")
        raise Unauthorized("this needs the admin's or an integration's token")

    async def require_viewer(self, request: web.Request, *, allow_query: bool = False) -> Viewer:
        """Who may see queues' figures: the admin and integrations every queue, a supervisor the queues it
        supervises, an agent the queues it works."""
        token = bearer_token(request, allow_query=allow_query)
        if self.is_admin(token):
            return Viewer("admin", None)
        supervisor = await self._directory.supervisor_by_token(token)
        if supervisor is not None:
            return Viewer("supervisor", frozenset(supervisor.queue_ids), supervisor.id)
        agent = await self._directory.agent_by_token(token)
        if agent is not None:
            return Viewer("agent", frozenset(agent.queue_ids), agent.id)
        if await self._integrations.by_token(token) is not None:
            return Viewer("integration", None)
        raise Unauthorized("unknown token")

    async def require_supervisor(self, request: web.Request) -> Viewer:
        """The admin (every queue) or a supervisor (its queues): who may act on agents and waiting work."""
        viewer = await self.require_viewer(request)
        if viewer.role not in ("admin", "supervisor"):
            raise Forbidden(f"this needs the admin's or a supervisor's token; an {viewer.role} may not")
        return viewer

    async def _refuse_integration(self, token: str, needed: str) -> None:
        """An integration's token is known but reads events and manages webhooks only, a supervisor's watches
        and acts on its queues only: 403 anywhere else."""
        if await self._integrations.by_token(token) is not None:
            raise Forbidden(f"this needs {needed}; an integration may not")
        if await self._directory.supervisor_by_token(token) is not None:
            raise Forbidden(f"this needs {needed}; a supervisor may not")
