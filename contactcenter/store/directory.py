"""Queues, agents and supervisors: who works which queue, and how an agent's token is recognised."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from contactcenter.errors import Conflict, Invalid
from schema import AgentCreate, AgentCreated, QueueCreate, QueueCreated


@dataclass(frozen=True)
class AgentProfile:
    id: uuid.UUID
    name: str
    queue_ids: list[uuid.UUID]


INSERT_QUEUE = """
INSERT INTO queues (id, name, channels, service_level_seconds, service_level_goal, wrap_up_seconds)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (name) DO NOTHING
"""
QUEUE_IDS_BY_NAME = "SELECT name, id FROM queues WHERE name = ANY($1::text[])"
INSERT_AGENT = "INSERT INTO agents (id, name, token_hash) VALUES ($1, $2, $3)"
INSERT_AGENT_QUEUES = "INSERT INTO agent_queues (agent_id, queue_id) SELECT $1, unnest($2::uuid[])"
ALL_QUEUES = "SELECT id, name FROM queues ORDER BY name"
ALL_AGENT_IDS = "SELECT id FROM agents"
INSERT_SUPERVISOR = "INSERT INTO supervisors (id, name, token_hash) VALUES ($1, $2, $3)"
INSERT_SUPERVISOR_QUEUES = "INSERT INTO supervisor_queues (supervisor_id, queue_id) SELECT $1, unnest($2::uuid[])"
SUPERVISOR_BY_TOKEN = """
SELECT s.id, s.name, coalesce(array_agg(sq.queue_id) FILTER (WHERE sq.queue_id IS NOT NULL), '{}') AS queue_ids
FROM supervisors s LEFT JOIN supervisor_queues sq ON sq.supervisor_id = s.id
WHERE s.token_hash = $1
GROUP BY s.id
"""
QUEUE_TARGETS = "SELECT id, name, service_level_seconds, service_level_goal FROM queues ORDER BY name"
_AGENTS = """
SELECT a.id, a.name, coalesce(array_agg(aq.queue_id) FILTER (WHERE aq.queue_id IS NOT NULL), '{}') AS queue_ids
FROM agents a LEFT JOIN agent_queues aq ON aq.agent_id = a.id
"""
ALL_AGENTS = _AGENTS + " GROUP BY a.id"
AGENT_BY_ID = _AGENTS + " WHERE a.id = $1 GROUP BY a.id"
AGENT_BY_TOKEN = """
SELECT a.id, a.name, coalesce(array_agg(aq.queue_id) FILTER (WHERE aq.queue_id IS NOT NULL), '{}') AS queue_ids
FROM agents a LEFT JOIN agent_queues aq ON aq.agent_id = a.id
WHERE a.token_hash = $1
GROUP BY a.id
"""


@dataclass(frozen=True)
class QueueTarget:
    """A queue and its service-level target."""

    id: uuid.UUID
    name: str
    seconds: int
    goal: float


def token_bytes(token: str) -> bytes:
    """A token as bytes, whatever text it is: aiohttp decodes a header's undecodable bytes as lone surrogates,
    which plain UTF-8 cannot encode; `surrogateescape` gives those bytes back."""
    return token.encode("utf-8", "surrogateescape")


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token_bytes(token)).digest()


class Directory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_queue(self, body: QueueCreate) -> QueueCreated:
        queue_id = uuid.uuid4()
        channels = list(dict.fromkeys(body.channels))
        status = await self._pool.execute(
            INSERT_QUEUE,
            queue_id,
            body.name,
            [str(c) for c in channels],
            body.service_level_seconds,
            body.service_level_goal,
            body.wrap_up_seconds,
        )
        if status.endswith(" 0"):
            raise Conflict(f"a queue named {body.name!r} exists already", field="name")
        return QueueCreated(
            id=queue_id,
            name=body.name,
            channels=channels,
            service_level_seconds=body.service_level_seconds,
            service_level_goal=body.service_level_goal,
            wrap_up_seconds=body.wrap_up_seconds,
        )

    async def create_agent(self, body: AgentCreate) -> AgentCreated:
        agent_id, token, names = await self._create_person(body, INSERT_AGENT, INSERT_AGENT_QUEUES)
        return AgentCreated(id=agent_id, name=body.name, queues=names, token=token)

    async def create_supervisor(self, body: AgentCreate) -> AgentCreated:
        """A supervisor, created as an agent is: a name, the queues it supervises, a token shown once."""
        person_id, token, names = await self._create_person(body, INSERT_SUPERVISOR, INSERT_SUPERVISOR_QUEUES)
        return AgentCreated(id=person_id, name=body.name, queues=names, token=token)

    async def _create_person(
        self, body: AgentCreate, insert: str, insert_queues: str
    ) -> tuple[uuid.UUID, str, list[str]]:
        names = list(dict.fromkeys(body.queues))
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(QUEUE_IDS_BY_NAME, names)
            found = {row["name"]: row["id"] for row in rows}
            missing = [name for name in names if name not in found]
            if missing:
                raise Invalid(f"no such queue: {_a_few(missing)}", field="queues")
            person_id = uuid.uuid4()
            token = secrets.token_urlsafe(32)
            await conn.execute(insert, person_id, body.name, token_hash(token))
            await conn.execute(insert_queues, person_id, [found[name] for name in names])
        return person_id, token, names

    async def supervisor_by_token(self, token: str) -> AgentProfile | None:
        row = await self._pool.fetchrow(SUPERVISOR_BY_TOKEN, token_hash(token))
        if row is None:
            return None
        return AgentProfile(id=row["id"], name=row["name"], queue_ids=list(row["queue_ids"]))

    async def queue_targets(self) -> list[QueueTarget]:
        return [
            QueueTarget(row["id"], row["name"], row["service_level_seconds"], float(row["service_level_goal"]))
            for row in await self._pool.fetch(QUEUE_TARGETS)
        ]

    async def agents(self) -> list[AgentProfile]:
        return [
            AgentProfile(id=row["id"], name=row["name"], queue_ids=list(row["queue_ids"]))
            for row in await self._pool.fetch(ALL_AGENTS)
        ]

    async def agent(self, agent_id: uuid.UUID) -> AgentProfile | None:
        row = await self._pool.fetchrow(AGENT_BY_ID, agent_id)
        return AgentProfile(id=row["id"], name=row["name"], queue_ids=list(row["queue_ids"])) if row else None

    async def queue_id(self, name: str) -> uuid.UUID | None:
        rows = await self._pool.fetch(QUEUE_IDS_BY_NAME, [name])
        return rows[0]["id"] if rows else None

    async def agent_by_token(self, token: str) -> AgentProfile | None:
        row = await self._pool.fetchrow(AGENT_BY_TOKEN, token_hash(token))
        if row is None:
            return None
        return AgentProfile(id=row["id"], name=row["name"], queue_ids=list(row["queue_ids"]))

    async def queues(self) -> dict[uuid.UUID, str]:
        """Every queue's name by its id."""
        return {row["id"]: row["name"] for row in await self._pool.fetch(ALL_QUEUES)}

    async def agent_ids(self) -> list[uuid.UUID]:
        return [row["id"] for row in await self._pool.fetch(ALL_AGENT_IDS)]


def _a_few(names: list[str], shown: int = 3) -> str:
    """The first names and how many more: an error message stays short however long the list."""
    more = f" (and {len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
