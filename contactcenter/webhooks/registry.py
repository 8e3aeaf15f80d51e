"""Registered webhooks in PostgreSQL: create, list and delete them (each caller sees its own: an integration
its webhooks, the admin all of them) — or an integration with all of its own — and put parked deliveries back in
line (resuming a suspended webhook)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from contactcenter.errors import NotFound
from contactcenter.webhooks.bindings import WebhookBindings
from contactcenter.webhooks.patterns import types_regex
from schema.webhooks import ReplayResult, WebhookCreate, WebhookCreated, WebhookView

INSERT_WEBHOOK = """
INSERT INTO webhooks (id, url, types, types_regex, secret, integration_id) VALUES ($1, $2, $3, $4, $5, $6)
"""
# `$1` null: the admin, who sees every webhook.
LIST_WEBHOOKS = """
SELECT w.id, w.url, w.types, w.integration_id, w.created_at, w.suspended_at, w.missed_after,
       (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'parked') AS parked
FROM webhooks w
WHERE $1::uuid IS NULL OR w.integration_id = $1
ORDER BY w.created_at, w.id
"""
DELETE_WEBHOOK = "DELETE FROM webhooks WHERE id = $1 AND ($2::uuid IS NULL OR integration_id = $2) RETURNING types"
REPLAY_PARKED = """
UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now()
WHERE webhook_id = $1 AND state = 'parked'
"""
INTEGRATION_PATTERNS = "SELECT DISTINCT unnest(types) AS pattern FROM webhooks WHERE integration_id = $1"
# Its webhooks and their deliveries go with it (ON DELETE CASCADE).
DELETE_INTEGRATION = "DELETE FROM integrations WHERE id = $1"
# The row locked, so a dispatcher suspending it meanwhile waits for the replay's commit.
SUSPENSION = "SELECT suspended_at, missed_after FROM webhooks WHERE id = $1 FOR UPDATE"
RESUME = "UPDATE webhooks SET suspended_at = NULL, missed_after = NULL, replayed_at = clock_timestamp() WHERE id = $1"
DESTINATION = "SELECT url, secret FROM webhooks WHERE id = $1"


@dataclass(frozen=True)
class Destination:
    """Where a webhook's deliveries go and what signs them."""

    url: str
    secret: str


class Webhooks:
    def __init__(self, pool: asyncpg.Pool, bindings: WebhookBindings) -> None:
        self._pool = pool
        self._bindings = bindings

    async def create(self, body: WebhookCreate, owner: uuid.UUID | None) -> WebhookCreated:
        """Its patterns bound to the dispatchers' queue first, then stored: every event published once it is
        stored reaches the queue (`bindings`)."""
        webhook_id = uuid.uuid4()
        secret = "whsec_" + secrets.token_urlsafe(32)
        types = list(dict.fromkeys(body.types))
        async with self._bindings.changing(self._pool) as conn:
            await self._bindings.bind(types)
            await conn.execute(INSERT_WEBHOOK, webhook_id, body.url, types, types_regex(types), secret, owner)
        return WebhookCreated(id=webhook_id, url=body.url, types=types, secret=secret)

    async def bind_every_pattern(self) -> None:
        """At a dispatcher's start (`bindings.WebhookBindings.reconcile`)."""
        await self._bindings.reconcile(self._pool)

    async def rebind_every_pattern(self) -> None:
        """At each dispatcher's scan (`bindings.WebhookBindings.rebind`)."""
        await self._bindings.rebind(self._pool)

    async def visible_to(self, owner: uuid.UUID | None) -> list[WebhookView]:
        rows = await self._pool.fetch(LIST_WEBHOOKS, owner)
        return [WebhookView.model_validate(dict(row)) for row in rows]

    async def delete(self, webhook_id: uuid.UUID, owner: uuid.UUID | None) -> None:
        """Delete it and its deliveries; 404 for one that does not exist or is another integration's."""
        async with self._bindings.changing(self._pool) as conn:
            deleted = await conn.fetchval(DELETE_WEBHOOK, webhook_id, owner)
            if deleted is None:
                raise NotFound("no such webhook", field="webhook_id")
            await self._bindings.unbind_unused(conn, deleted)

    async def delete_integration(self, integration_id: uuid.UUID) -> None:
        """Delete an integration — its token opens nothing any more — with its webhooks and their deliveries, and
        unbind the patterns of its webhooks that no other webhook has; 404 for an unknown one."""
        async with self._bindings.changing(self._pool) as conn:
            async with conn.transaction():
                patterns = [row["pattern"] for row in await conn.fetch(INTEGRATION_PATTERNS, integration_id)]
                if await conn.execute(DELETE_INTEGRATION, integration_id) == "DELETE 0":
                    raise NotFound("no such integration", field="integration_id")
            await self._bindings.unbind_unused(conn, patterns)

    async def replay_parked(self, webhook_id: uuid.UUID) -> int:
        """Put its parked deliveries back in line with fresh retries (resuming it if it was suspended); how many."""
        return (await self.replay(webhook_id)).replayed

    async def replay(self, webhook_id: uuid.UUID) -> ReplayResult:
        """Put its parked deliveries back in line with fresh retries, and resume it if it was suspended (with the
        id after which its events were not recorded)."""
        async with self._pool.acquire() as conn, conn.transaction():
            suspension = await conn.fetchrow(SUSPENSION, webhook_id)
            if suspension is None:
                raise NotFound("no such webhook", field="webhook_id")
            await conn.execute(RESUME, webhook_id)  # also stamps the replay: see `deliveries.SUSPEND`
            status = await conn.execute(REPLAY_PARKED, webhook_id)
        return ReplayResult(replayed=int(status.rsplit(" ", 1)[1]), missed_after=suspension["missed_after"])

    async def destination(self, webhook_id: uuid.UUID) -> Destination | None:
        row = await self._pool.fetchrow(DESTINATION, webhook_id)
        return None if row is None else Destination(url=row["url"], secret=row["secret"])
