"""`--history N`: every customer the traffic can draw comes with N earlier contacts, as in a contact center that
has run for a while — so cards, which carry their timeline's first page (`store.cards.TIMELINE_LIMIT` entries),
weigh what they weigh in production. Written straight into the run's database before the load starts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from contactcenter.identities import normalise_phone

BODY = "An earlier message about an order, a delivery and a car in for its service."


async def seed_history(database_url: str, schema: str, numbers: list[str], per_customer: int) -> int:
    """Give each phone number a client with `per_customer` inbound SMS in a closed conversation; answer how
    many interactions were written."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        clients = [uuid.uuid4() for _ in numbers]
        conversations = [uuid.uuid4() for _ in numbers]
        values = [normalise_phone(number, "US") for number in numbers]
        start = datetime.now(UTC) - timedelta(days=365)
        async with conn.transaction():
            await conn.execute("INSERT INTO clients (id) SELECT unnest($1::uuid[])", clients)
            await conn.execute(
                "INSERT INTO identities (kind, value, client_id, verified) "
                "SELECT 'phone', v, c, true FROM unnest($1::text[], $2::uuid[]) AS t(v, c)",
                values,
                clients,
            )
            await conn.execute(
                "INSERT INTO conversations (id, client_id, channel, state, opened_at, closed_at) "
                "SELECT v, c, 'sms', 'closed', $3, $3 FROM unnest($1::uuid[], $2::uuid[]) AS t(v, c)",
                conversations,
                clients,
                start,
            )
            await conn.execute(
                """
                INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                                          from_address, to_address, from_verified, body, received_at)
                SELECT gen_random_uuid(), 'sms', 'inbound', 'SMhistory' || t.n || '.' || k, t.c, t.v,
                       t.a, '+15005550006', true, $5, $4::timestamptz + k * interval '1 hour'
                FROM unnest($1::uuid[], $2::uuid[], $3::text[]) WITH ORDINALITY AS t(c, v, a, n),
                     generate_series(1, $6) AS k
                """,
                clients,
                conversations,
                values,
                start,
                BODY,
                per_customer,
            )
            await conn.execute("ANALYZE")  # the planner sees the tables as they are, not empty
        return len(numbers) * per_customer
    finally:
        await conn.close()
