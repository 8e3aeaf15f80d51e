"""Migration 021: attachments stored before it, whose ids anyone knowing the Message-ID could derive, get
random ids, and the links in their mails' bodies follow."""

from __future__ import annotations

import uuid

import asyncpg

from contactcenter.store.migrate import migrate

# How attachment ids were made before 021 (a uuid5 of the Message-ID and the attachment's place).
OLD_NAMESPACE = uuid.UUID("6d1d3c38-0c44-4e7d-9a3e-6b7c6f1f5a2e")


async def test_021_gives_stored_attachments_random_ids_and_rewrites_their_links(pool: asyncpg.Pool) -> None:
    message_id = "order-1@customer.example"
    old = [uuid.uuid5(OLD_NAMESPACE, f"{message_id}\n{n}") for n in range(2)]
    client = uuid.uuid4()
    body = "Subject: invoice\n\nAttachments:\n" + "".join(f"- /api/v1/email/attachments/{i}\n" for i in old)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM schema_migrations WHERE version = 21")  # as a database before 021
        await conn.execute("INSERT INTO email_messages (message_id, direction) VALUES ($1, 'inbound')", message_id)
        await conn.executemany(
            "INSERT INTO email_attachments (id, message_id, position, filename, content_type, size, content)"
            " VALUES ($1, $2, $3, 'a.pdf', 'application/pdf', 1, 'x')",
            [(i, message_id, n) for n, i in enumerate(old)],
        )
        await conn.execute("INSERT INTO clients (id) VALUES ($1)", client)
        await conn.execute(
            "INSERT INTO interactions (id, channel, direction, provider_id, client_id, from_address, to_address,"
            " from_verified, body, received_at) VALUES ($1, 'email', 'inbound', $2, $3, 'a@b.example', '', false,"
            " $4, now())",
            uuid.uuid4(),
            message_id,
            client,
            body,
        )

    assert await migrate(pool) == ["021_email_attachment_ids.sql"]

    new = [row["id"] for row in await pool.fetch("SELECT id FROM email_attachments ORDER BY position")]
    assert len(new) == 2 and not set(new) & set(old) and all(i.version == 4 for i in new)
    rewritten = await pool.fetchval("SELECT body FROM interactions WHERE provider_id = $1", message_id)
    assert rewritten == body.replace(str(old[0]), str(new[0])).replace(str(old[1]), str(new[1]))
