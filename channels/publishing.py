"""Hands an accepted contact to the routers: publish to the interactions exchange and wait for the confirm."""

from __future__ import annotations

from contactcenter.bus import Bus
from contactcenter.topology import Topology
from schema import Interaction


class InteractionPublisher:
    def __init__(self, bus: Bus, topology: Topology) -> None:
        self._bus = bus
        self._topology = topology

    async def publish(self, interaction: Interaction) -> None:
        """Return once the broker holds the interaction; raise `Unavailable` when it does not confirm in time.
        Mandatory: the routers' queue is declared at start-up, so an unroutable contact means a broken set-up,
        and the provider must retry rather than believe us."""
        await self._bus.publish(
            self._topology.interactions,
            self._topology.interaction_key(interaction),
            interaction.model_dump_json().encode(),
            message_id=f"{interaction.channel}:{interaction.provider_id}",
            mandatory=True,
        )
