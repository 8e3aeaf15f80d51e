"""Names on the bus, derived from the namespace (`cc` in production, one per test run in tests)."""

from __future__ import annotations

import uuid
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
    def agents(self) -> str:
        """Exchange: notices to agents (offers, messages, revocations), routed to the gateway holding the socket."""
        return f"{self.namespace}.agents"

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

    def gateway_queue(self) -> QueueSpec:
        return QueueSpec(name=f"{self.namespace}.gateway.{uuid.uuid4().hex}", exchange=self.agents, shared=False)

    @staticmethod
    def interaction_key(interaction: Interaction) -> str:
        return f"interaction.{interaction.channel}.{interaction.direction}"

    @staticmethod
    def agent_key(agent_id: uuid.UUID) -> str:
        return f"agent.{agent_id}"

    @staticmethod
    def agent_of_key(routing_key: str) -> uuid.UUID | None:
        """The agent a notice is for, read from its routing key without parsing the body."""
        _, _, agent = routing_key.partition(".")
        try:
            return uuid.UUID(agent)
        except ValueError:
            return None
