"""Names on the bus, derived from the namespace (`cc` in production, one per test run in tests)."""

from __future__ import annotations

from dataclasses import dataclass

from contactcenter.bus import QueueSpec
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
    def dead_letter_queue(self) -> QueueSpec:
        """Keeps what failed too often, for an operator to look at."""
        return QueueSpec(name=f"{self.namespace}.dead-letters", exchange=self.dead_letters, binding_keys=("#",))

    @staticmethod
    def interaction_key(interaction: Interaction) -> str:
        return f"interaction.{interaction.channel}.{interaction.direction}"
