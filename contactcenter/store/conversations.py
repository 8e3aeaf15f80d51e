"""Interactions and the conversations they belong to: stored once, attached, assigned, closed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from contactcenter.errors import NotFound
from contactcenter.identities import Identity
from contactcenter.store.cards import CARD_OF_INTERACTION
from schema import Channel, ClientCard, Direction, Interaction


@dataclass(frozen=True)
class RecordedInteraction:
    """Where an inbound interaction landed. `new` is False for a redelivery or a provider's retry."""

    interaction_id: uuid.UUID
    client_id: uuid.UUID
    conversation_id: uuid.UUID
    queue_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    conversation_open: bool
    new: bool


@dataclass(frozen=True)
class InteractionInContext:
    interaction: Interaction
    queue_name: str
    card: ClientCard


RECORD_INBOUND = "SELECT * FROM cc_record_inbound($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
INSERT_INTERACTION = """
INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                          from_address, to_address, from_verified, body, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
# An interaction with what an offer needs beside it: the queue's name and the client's whole card.
INTERACTION_IN_CONTEXT = f"""
SELECT x.id, x.channel, x.direction, x.provider_id, x.from_address, x.to_address, x.from_verified, x.body,
       x.received_at, x.client_id, coalesce(q.name, '') AS queue_name, {CARD_OF_INTERACTION} AS card
FROM interactions x
LEFT JOIN conversations v ON v.id = x.conversation_id
LEFT JOIN queues q ON q.id = v.queue_id
WHERE x.id = $1
"""
# Where a reply goes: back to whoever last wrote in, from the address they wrote to.
REPLY_ROUTE = """
SELECT v.channel, v.client_id, x.from_address, x.to_address
FROM conversations v
JOIN LATERAL (SELECT from_address, to_address FROM interactions
              WHERE conversation_id = v.id AND direction = 'inbound'
              ORDER BY received_at DESC LIMIT 1) x ON true
WHERE v.id = $1 AND v.agent_id = $2 AND v.state = 'open'
"""
# Every open conversation that has a queue, with the interaction that opened it: what live state holds.
OPEN_IN_QUEUES = """
SELECT v.id, v.queue_id, v.agent_id, (extract(epoch FROM v.opened_at) * 1000)::bigint AS opened_ms,
       (SELECT x.id FROM interactions x WHERE x.conversation_id = v.id AND x.direction = 'inbound'
        ORDER BY x.received_at LIMIT 1) AS interaction_id
FROM conversations v
WHERE v.state = 'open' AND v.queue_id IS NOT NULL
ORDER BY v.opened_at
"""
ASSIGN = "UPDATE conversations SET agent_id = $2 WHERE id = $1 AND state = 'open'"
CLOSE = """
UPDATE conversations SET state = 'closed', closed_at = now()
WHERE id = $1 AND agent_id = $2 AND state = 'open'
"""


@dataclass(frozen=True)
class ReplyRoute:
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    client_address: str
    our_address: str


@dataclass(frozen=True)
class OpenConversation:
    conversation_id: uuid.UUID
    queue_id: uuid.UUID
    agent_id: uuid.UUID | None
    interaction_id: uuid.UUID
    opened_ms: int


class Conversations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record_inbound(self, interaction: Interaction, sender: Identity) -> RecordedInteraction:
        """Resolve the sender, store the interaction once and attach it to the client's open conversation on
        its channel — one transaction, one round trip (`cc_record_inbound`, migration 002)."""
        row = await self._pool.fetchrow(
            RECORD_INBOUND,
            interaction.id,
            str(interaction.channel),
            str(interaction.direction),
            interaction.provider_id,
            str(sender.kind),
            sender.value,
            interaction.from_verified,
            interaction.from_address,
            interaction.to_address,
            interaction.body,
            interaction.received_at,
        )
        assert row is not None, "cc_record_inbound always answers one row"
        return RecordedInteraction(
            interaction_id=row["o_interaction_id"],
            client_id=row["o_client_id"],
            conversation_id=row["o_conversation_id"],
            queue_id=row["o_queue_id"],
            agent_id=row["o_agent_id"],
            conversation_open=row["o_open"],
            new=row["o_new"],
        )

    async def interaction(self, interaction_id: uuid.UUID) -> InteractionInContext:
        row = await self._pool.fetchrow(INTERACTION_IN_CONTEXT, interaction_id)
        if row is None:
            raise NotFound(f"no interaction {interaction_id}")
        interaction = Interaction(
            id=row["id"],
            channel=Channel(row["channel"]),
            direction=Direction(row["direction"]),
            provider_id=row["provider_id"],
            from_address=row["from_address"],
            to_address=row["to_address"],
            from_verified=row["from_verified"],
            body=row["body"],
            received_at=row["received_at"],
        )
        return InteractionInContext(interaction, row["queue_name"], ClientCard.model_validate_json(row["card"]))

    async def assign(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        status = await self._pool.execute(ASSIGN, conversation_id, agent_id)
        if status.endswith(" 0"):
            raise NotFound(f"conversation {conversation_id} is not open", field="conversation_id")

    async def close(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        status = await self._pool.execute(CLOSE, conversation_id, agent_id)
        if status.endswith(" 0"):
            raise NotFound(f"conversation {conversation_id} is not open and assigned to you", field="conversation_id")

    async def reply_route(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> ReplyRoute:
        row = await self._pool.fetchrow(REPLY_ROUTE, conversation_id, agent_id)
        if row is None:
            raise NotFound(f"conversation {conversation_id} is not open and assigned to you", field="conversation_id")
        return ReplyRoute(
            conversation_id, row["client_id"], Channel(row["channel"]), row["from_address"], row["to_address"]
        )

    async def record_outbound(self, route: ReplyRoute, interaction: Interaction) -> None:
        await self._pool.execute(
            INSERT_INTERACTION,
            interaction.id,
            str(interaction.channel),
            str(interaction.direction),
            interaction.provider_id,
            route.client_id,
            route.conversation_id,
            interaction.from_address,
            interaction.to_address,
            interaction.from_verified,
            interaction.body,
            interaction.received_at,
        )

    async def open_in_queues(self) -> list[OpenConversation]:
        rows = await self._pool.fetch(OPEN_IN_QUEUES)
        return [
            OpenConversation(row["id"], row["queue_id"], row["agent_id"], row["interaction_id"], row["opened_ms"])
            for row in rows
            if row["interaction_id"] is not None
        ]
