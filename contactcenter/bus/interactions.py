"""The interactions exchange, all of it: its names on the bus (derived from the namespace: `cc` in production,
one per test run in tests), its routing keys, the wire format of its messages, and publishing one.

Adapters hand contacts to the routers through it (via `channels.intake.publishing`, which groups them), and a
router hands one back alone. Several contacts travel together only if they share a channel (one routing key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter

from contactcenter.bus import Bus, QueueSpec
from schema import Interaction


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
    if body.lstrip()[:1] == b"[":
        return _INTERACTIONS.validate_json(body)
    return [Interaction.model_validate_json(body)]


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
