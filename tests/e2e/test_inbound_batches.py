"""Contacts travel to the routers several to a message under load. A message is still never half lost: a
contact that fails is tried again with the others once, then on its own — so one that can never be routed
reaches the dead-letter queue alone, and the rest of its message is stored and offered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from contactcenter.bus import QueueSpec
from contactcenter.bus.interactions import inbound_message, read_inbound_message
from contactcenter.settings import Settings
from schema import Channel, IdentityKind, Interaction
from tests.conftest import DATABASE_URL
from tests.inbox import Inbox
from tests.running import run_service


def _sms(sender: str, body: str) -> Interaction:
    return Interaction(
        channel=Channel.SMS,
        provider_id=f"SM-{body}",
        from_address=sender,
        sender_kind=IdentityKind.PHONE,
        from_verified=True,
        body=body,
        received_at=datetime.now(UTC),
    )


async def test_a_contact_that_can_never_be_routed_reaches_the_dead_letters_alone_and_the_rest_is_offered(
    service_settings: Settings,
) -> None:
    settings = service_settings.model_copy(update={"delivery_limit": 1})
    async with run_service(settings) as service:
        await service.create_queue("sales", ["sms"])
        desktop = await service.available_agent()
        bus, topology = service.services.bus, service.services.topology
        dead_letters = Inbox()
        watching = await bus.subscribe(topology.dead_letter_queue, dead_letters)
        first, second = _sms("+14155550101", "first"), _sms("+14155550102", "second")
        # A sender that is no number is recorded as given (issue 19); what can never be stored is a contact
        # whose id another contact holds already.
        never = _sms("+14155550103", "never").model_copy(update={"id": first.id})

        # As an API process publishes contacts that arrived together (no adapter lets such a sender in).
        message = inbound_message([first, never, second])
        await bus.publish(topology.interactions, "interaction.sms.inbound", message, message_id="m", mandatory=True)

        [dead_letter] = await dead_letters.wait_for(1)
        assert read_inbound_message(dead_letter.body) == [never]
        offer = await desktop.receive("offer")
        assert offer["reservation"]["interaction"]["body"] in ("first", "second")
        conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": settings.database_schema})
        try:
            stored = await conn.fetch("SELECT body FROM interactions ORDER BY body")
        finally:
            await conn.close()
        assert [row["body"] for row in stored] == ["first", "second"]
        await watching.close()
        await desktop.close()


async def test_a_burst_of_webhooks_shares_messages_and_every_contact_is_stored_once(service_settings: Settings) -> None:
    async with run_service(service_settings) as service:
        await service.create_queue("sales", ["sms"])
        bus, topology = service.services.bus, service.services.topology
        on_the_bus = Inbox()
        spy = QueueSpec(f"{topology.namespace}.spy", topology.interactions, ("interaction.#",), shared=False)
        watching = await bus.subscribe(spy, on_the_bus)
        senders = [f"+1415555{n:04d}" for n in range(40)]

        responses = await asyncio.gather(*(service.post_sms(sender=s, body=f"from {s}") for s in senders))

        assert {response.status for response in responses} == {200}
        async with asyncio.timeout(10):
            while sum(len(read_inbound_message(body)) for body in on_the_bus.bodies()) < len(senders):
                await asyncio.sleep(0.01)
        carried = [read_inbound_message(body) for body in on_the_bus.bodies()]
        assert sorted(i.from_address for message in carried for i in message) == senders
        # Forty webhooks at once: the ones arriving while the first waits for its confirm leave together.
        assert len(carried) < len(senders)
        await watching.close()
        conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service_settings.database_schema})
        try:
            async with asyncio.timeout(30):
                while await conn.fetchval("SELECT count(*) FROM interactions") < len(senders):
                    await asyncio.sleep(0.05)
            bodies = await conn.fetch("SELECT body FROM interactions")
        finally:
            await conn.close()
        assert sorted(row["body"] for row in bodies) == sorted(f"from {s}" for s in senders)
