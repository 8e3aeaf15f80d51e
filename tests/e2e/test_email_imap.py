"""The IMAP poller against a real dovecot: mail in a mailbox elsewhere reaches an agent; across restarts and a
rebuilt mailbox (new UIDVALIDITY) nothing is lost and nothing is taken twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from pydantic import SecretStr

from contactcenter.settings import Settings
from tests.conftest import DATABASE_URL
from tests.imap_server import ImapServer, running_dovecot
from tests.mail import customer_mail
from tests.running import AgentDesktop, run_service


@pytest.fixture
async def imap() -> AsyncIterator[ImapServer]:
    async with running_dovecot() as server:
        yield server


def _mail(n: int) -> bytes:
    return customer_mail(
        sender=f"customer{n}@customer.example", text=f"message {n}", message_id=f"<imap-{n}@customer.example>"
    ).as_bytes()


async def _offered_bodies(desktop: AgentDesktop, count: int) -> list[str]:
    bodies = []
    for _ in range(count):
        offer = await desktop.receive("offer")
        bodies.append(offer["reservation"]["interaction"]["body"])
        conversation = offer["reservation"]["conversation_id"]
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        await desktop.command({"type": "complete", "conversation_id": conversation}, "completed")
    return bodies


async def _stored_ids(schema: str) -> list[str]:
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("SELECT provider_id FROM interactions WHERE channel = 'email' ORDER BY provider_id")
        return [row["provider_id"] for row in rows]
    finally:
        await conn.close()


async def test_mail_polled_from_imap_reaches_an_agent_and_restarts_neither_lose_nor_repeat_it(
    service_settings: Settings, imap: ImapServer
) -> None:
    await imap.recreate("Support")
    settings = service_settings.model_copy(
        update={"imap_mailboxes": SecretStr(imap.url("Support")), "imap_poll_seconds": 0.2}
    )
    async with run_service(settings) as service:
        await service.create_queue("support", ["email"])
        desktop = await service.available_agent(queues=("support",))
        for n in (1, 2):
            await imap.deliver(_mail(n), "Support")
        bodies = await _offered_bodies(desktop, 2)
        assert sorted(body.split("\n")[2] for body in bodies) == ["message 1", "message 2"]
        await desktop.close()

    # Delivered while the service is down: taken after the restart, and only it.
    await imap.deliver(_mail(3), "Support")
    async with run_service(settings) as service:
        desktop = await service.agent_desktop((await service.create_agent("Bo", ["support"]))["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        (body,) = await _offered_bodies(desktop, 1)
        assert "message 3" in body

        # The mailbox is rebuilt (a new UIDVALIDITY) with old and new mail: only the new reaches an agent.
        await imap.recreate("Support")
        for n in (1, 2, 3, 4):
            await imap.deliver(_mail(n), "Support")
        (body,) = await _offered_bodies(desktop, 1)
        assert "message 4" in body
        await desktop.close()
    assert await _stored_ids(settings.database_schema) == [f"imap-{n}@customer.example" for n in (1, 2, 3, 4)]
