"""Contacts published together: alone when the bus is idle, several to a message while earlier ones wait for
the broker's confirm — each contact once, never two channels in one message, every contact of a message
failing alike when the broker refuses it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from channels.intake.publishing import PUBLISHING_LANES, InteractionPublisher
from contactcenter.bus import Handler, Outgoing, QueueSpec, Subscription
from contactcenter.bus.interactions import Topology, inbound_message, read_inbound_message
from contactcenter.errors import Unavailable
from schema import Channel, IdentityKind, Interaction

TOPOLOGY = Topology("unit")


def _contact(n: int, channel: Channel = Channel.SMS) -> Interaction:
    return Interaction(
        channel=channel,
        provider_id=f"{channel}-{n}",
        from_address=f"+1415555{n:04d}",
        sender_kind=IdentityKind.PHONE,
        body=f"message {n}",
        received_at=datetime.now(UTC),
    )


class HeldBroker:
    """A bus whose broker confirms when the test lets it (or refuses): it keeps what was published."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[Interaction], str]] = []
        self.confirming = asyncio.Event()
        self.refusing = False

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        mandatory: bool = False,
        content_type: str = "application/json",
    ) -> None:
        assert exchange == TOPOLOGY.interactions and mandatory
        self.messages.append((routing_key, read_inbound_message(body), message_id))
        await self.confirming.wait()
        if self.refusing:
            raise Unavailable("RabbitMQ refused the message (publish)")

    async def publish_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> list[Unavailable | None]:
        raise AssertionError("interactions are published one message at a time")

    async def write_many(
        self, exchange: str, messages: Sequence[Outgoing], *, content_type: str = "application/json"
    ) -> asyncio.Future[list[Unavailable | None]]:
        raise AssertionError("interactions are published one message at a time")

    async def declare(self, spec: QueueSpec) -> None:
        raise AssertionError("publishing declares nothing")

    async def unbind(self, spec: QueueSpec, binding_key: str) -> None:
        raise AssertionError("publishing unbinds nothing")

    async def subscribe(self, spec: QueueSpec, handler: Handler) -> Subscription:
        raise AssertionError("publishing consumes nothing")

    async def waiting(self, spec: QueueSpec) -> int:
        raise AssertionError("publishing counts nothing")

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


async def _waiting_for_the_broker(broker: HeldBroker, messages: int) -> None:
    async with asyncio.timeout(5):
        while len(broker.messages) < messages:
            await asyncio.sleep(0)


def test_one_interaction_is_a_json_object_and_several_a_json_array_and_both_read_back() -> None:
    one, two = _contact(1), _contact(2)
    assert inbound_message([one]).startswith(b"{")
    assert read_inbound_message(inbound_message([one])) == [one]
    assert inbound_message([one, two]).startswith(b"[")
    assert read_inbound_message(inbound_message([one, two])) == [one, two]
    # What an adapter of an earlier release publishes is read as it always was.
    assert read_inbound_message(one.model_dump_json().encode()) == [one]
    with pytest.raises(ValidationError):
        read_inbound_message(b'[{"channel": "fax"}]')


async def test_a_contact_on_an_idle_bus_leaves_alone_at_once() -> None:
    broker = HeldBroker()
    broker.confirming.set()
    publisher = InteractionPublisher(broker, TOPOLOGY, timeout=5)
    contact = _contact(1)

    await publisher.publish(contact)

    assert broker.messages == [("interaction.sms.inbound", [contact], "sms:sms-1")]


async def test_contacts_arriving_while_earlier_ones_wait_for_the_broker_leave_together_once_each() -> None:
    broker = HeldBroker()
    publisher = InteractionPublisher(broker, TOPOLOGY, timeout=5)
    contacts = [_contact(n) for n in range(12)]

    first = []
    for n, contact in enumerate(contacts[:PUBLISHING_LANES]):  # one after the other: each finds a lane free
        first.append(asyncio.create_task(publisher.publish(contact)))
        await _waiting_for_the_broker(broker, n + 1)
    rest = [asyncio.create_task(publisher.publish(contact)) for contact in contacts[PUBLISHING_LANES:]]
    await asyncio.sleep(0)
    assert not any(task.done() for task in first + rest), "nothing is answered before the broker confirms"
    broker.confirming.set()
    await asyncio.gather(*first, *rest)

    carried = [len(interactions) for _, interactions, _ in broker.messages]
    assert carried == [1] * PUBLISHING_LANES + [len(contacts) - PUBLISHING_LANES]
    assert [i for _, interactions, _ in broker.messages for i in interactions] == contacts
    assert broker.messages[-1][2] == f"sms:sms-{PUBLISHING_LANES}+{len(contacts) - PUBLISHING_LANES - 1}"


async def test_contacts_of_two_channels_never_share_a_message() -> None:
    broker = HeldBroker()
    publisher = InteractionPublisher(broker, TOPOLOGY, timeout=5)
    contacts = [_contact(n, channel) for n in range(6) for channel in (Channel.SMS, Channel.EMAIL)]

    publishing = [asyncio.create_task(publisher.publish(contact)) for contact in contacts]
    await _waiting_for_the_broker(broker, 2)  # one message per channel on its way, the rest waiting
    broker.confirming.set()
    await asyncio.gather(*publishing)

    for key, interactions, _ in broker.messages:
        assert {TOPOLOGY.interaction_key(interaction) for interaction in interactions} == {key}
    assert sorted(i.provider_id for _, interactions, _ in broker.messages for i in interactions) == sorted(
        contact.provider_id for contact in contacts
    )
    assert len(broker.messages) < len(contacts)


async def test_every_contact_of_a_message_the_broker_refuses_is_told_so() -> None:
    broker = HeldBroker()
    broker.refusing = True
    publisher = InteractionPublisher(broker, TOPOLOGY, timeout=5)

    publishing = [asyncio.create_task(publisher.publish(_contact(n))) for n in range(8)]
    await _waiting_for_the_broker(broker, 1)
    broker.confirming.set()
    outcomes = await asyncio.gather(*publishing, return_exceptions=True)

    assert all(isinstance(outcome, Unavailable) for outcome in outcomes)
    assert [len(interactions) for _, interactions, _ in broker.messages] == [8]


async def test_a_broker_that_never_confirms_answers_unavailable_within_the_timeout() -> None:
    broker = HeldBroker()
    publisher = InteractionPublisher(broker, TOPOLOGY, timeout=0.05)

    publishing = [asyncio.create_task(publisher.publish(_contact(n))) for n in range(PUBLISHING_LANES + 3)]
    outcomes = await asyncio.wait_for(asyncio.gather(*publishing, return_exceptions=True), 2)

    assert all(isinstance(outcome, Unavailable) for outcome in outcomes)
    assert all("did not confirm" in outcome.message for outcome in outcomes if isinstance(outcome, Unavailable))
