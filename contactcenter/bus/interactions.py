"""The interactions exchange, all of it: its names on the bus (derived from the namespace: `cc` in production,
one per test run in tests), its routing keys, the wire format of its messages, and publishing one.

Adapters hand contacts to the routers through it (via `channels.intake.publishing`, which groups them), and a
router hands one back alone. Several contacts travel together only if they share a channel (one routing key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from contactcenter.bus import Bus, QueueSpec
from schema import Interaction
from schema.interactions import SENDER_KINDS_BEFORE_ISSUE_14


@dataclass(frozen=True)
class Topology:
    namespace: str
    # The service sets both from `Settings` (CC_ROUTER_PREFETCH, CC_DELIVERY_LIMIT); these defaults are theirs.
    router_prefetch: int = 32
    delivery_limit: int = 5

    @property
    def interactions(self) -> str:
        """Exchange: inbound interactions from the channel adapters to the routers."""
        return f"{self.namespace}.interactions"

    @property
    def events(self) -> str:
        """Exchange: CloudEvents for other systems, routing key = the event type without its prefix."""
        return f"{self.namespace}.events"

    @property
    def dead_letters(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def router_queue(self) -> QueueSpec:
        return QueueSpec(
            name=f"{self.namespace}.router",
            exchange=self.interactions,
            binding_keys=("interaction.#",),
            prefetch=self.router_prefetch,
            delivery_limit=self.delivery_limit,
            dead_letter_exchange=self.dead_letters,
        )

    @property
    def webhooks_queue(self) -> QueueSpec:
        """The webhook dispatchers' queue on the events exchange. Bound to the patterns of the registered webhooks
        only (`contactcenter.webhooks.bindings`): events nobody registered for never reach it."""
        return QueueSpec(
            name=f"{self.namespace}.webhooks",
            exchange=self.events,
            prefetch=self.router_prefetch,
            delivery_limit=self.delivery_limit,
            dead_letter_exchange=self.dead_letters,
            # Events are recorded in the order they were published, by one dispatcher at a time: recorded side by
            # side, an entity's later event could be sent before its earlier one was recorded.
            single_active_consumer=True,
        )

    @property
    def dead_letter_queue(self) -> QueueSpec:
        """Keeps what failed too often, for an operator to look at."""
        return QueueSpec(name=f"{self.namespace}.dead-letters", exchange=self.dead_letters, binding_keys=("#",))

    @staticmethod
    def interaction_key(interaction: Interaction) -> str:
        return f"interaction.{interaction.channel}.{interaction.direction}"


_INTERACTIONS = TypeAdapter(list[Interaction])


def inbound_message(interactions: Sequence[Interaction]) -> bytes:
    """The body of a message on the interactions exchange: one interaction as a JSON object, several (of one
    channel, published together) as a JSON array of them."""
    if len(interactions) == 1:
        return interactions[0].model_dump_json().encode()
    return _INTERACTIONS.dump_json(list(interactions))


def read_inbound_message(body: bytes) -> list[Interaction]:
    """The interactions a message on the interactions exchange carries, either form; raise `ValidationError`
    on anything else."""
    try:
        if body.lstrip()[:1] == b"[":
            return _INTERACTIONS.validate_json(body)
        return [Interaction.model_validate_json(body)]
    except ValidationError:
        return _read_before_sender_kind(body)


def _read_before_sender_kind(body: bytes) -> list[Interaction]:
    """A message an adapter published before interactions said their sender's kind (a rolling upgrade): read
    with the kind its channel then meant. Remove once no such message can be in flight."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    items = parsed if isinstance(parsed, list) else [parsed]
    for item in items:
        if isinstance(item, dict) and "sender_kind" not in item and item.get("channel") in SENDER_KINDS_BEFORE_ISSUE_14:
            item["sender_kind"] = SENDER_KINDS_BEFORE_ISSUE_14[item["channel"]]
    # What was not such a message fails here as it failed above.
    return _INTERACTIONS.validate_python(items)


async def publish_inbound(bus: Bus, topology: Topology, interactions: Sequence[Interaction]) -> None:
    """Return once the broker holds them; raise `Unavailable` when it does not confirm in time. Mandatory: the
    routers' queue is declared at start-up, so an unroutable contact means a broken set-up, and the provider
    must retry rather than believe us."""
    first = interactions[0]
    message_id = f"{first.channel}:{first.provider_id}"
    if len(interactions) > 1:
        message_id += f"+{len(interactions) - 1}"
    await bus.publish(
        topology.interactions,
        topology.interaction_key(first),
        inbound_message(interactions),
        message_id=message_id,
        mandatory=True,
    )
