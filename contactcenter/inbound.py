"""One message on the interactions exchange: how adapters hand contacts to the routers, and how a router hands
one back alone. Several contacts travel together only if they share a channel (one routing key)."""

from __future__ import annotations

from collections.abc import Sequence

from contactcenter.bus import Bus
from contactcenter.topology import Topology
from schema import Interaction
from schema.interactions import inbound_message


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
