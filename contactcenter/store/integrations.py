"""Integrations: other systems (an ERP, a data warehouse) that read events and manage their own webhooks, and
how an integration's token is recognised — stored hashed, as agents' tokens are."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from contactcenter.store.directory import token_hash
from schema.webhooks import IntegrationCreate, IntegrationCreated

INSERT_INTEGRATION = "INSERT INTO integrations (id, name, token_hash) VALUES ($1, $2, $3)"
INTEGRATION_BY_TOKEN = "SELECT id, name FROM integrations WHERE token_hash = $1"


@dataclass(frozen=True)
class Integration:
    id: uuid.UUID
    name: str


class Integrations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, body: IntegrationCreate) -> IntegrationCreated:
        integration_id = uuid.uuid4()
        token = secrets.token_urlsafe(32)
        await self._pool.execute(INSERT_INTEGRATION, integration_id, body.name, token_hash(token))
        return IntegrationCreated(id=integration_id, name=body.name, token=token)

    async def by_token(self, token: str) -> Integration | None:
        row = await self._pool.fetchrow(INTEGRATION_BY_TOKEN, token_hash(token))
        return None if row is None else Integration(id=row["id"], name=row["name"])
