"""Hands accepted contacts to the routers (shared by every channel's intake): publish to the interactions exchange
and wait for the confirm.

Group commit: contacts of one channel that arrive while earlier ones wait for the broker travel together, as
one message, next. An idle service publishes each contact alone at once; under load one message, one confirm
and one delivery carry many, and the router records them together — the per-message costs of the broker and
the client were a large share of what a contact cost, and most of its wake-ups (docs/performance.md, "Figures
behind choices in the code").
"""

from __future__ import annotations

from collections.abc import Sequence

from contactcenter.batching import Batcher
from contactcenter.bus import Bus
from contactcenter.bus.interactions import Topology, publish_inbound
from contactcenter.errors import Unavailable
from schema import Interaction

# Messages in flight per channel; contacts arriving meanwhile wait to leave together in the next.
PUBLISHING_LANES = 2


class InteractionPublisher:
    def __init__(self, bus: Bus, topology: Topology, *, timeout: float, batch: int = 64) -> None:
        self._bus = bus
        self._topology = topology
        self._timeout = timeout
        self._batch = batch
        self._batchers: dict[str, Batcher[Interaction, None]] = {}

    async def publish(self, interaction: Interaction) -> None:
        """Return once the broker holds the interaction; raise `Unavailable` when it does not confirm within
        the timeout, waiting for a place included (every contact of a message fails alike)."""
        key = self._topology.interaction_key(interaction)
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = Batcher(
                self._publish_together, lanes=PUBLISHING_LANES, max_batch=self._batch, timeout=self._timeout
            )
            self._batchers[key] = batcher
        try:
            await batcher.call(interaction)
        except TimeoutError as exc:
            # Its message may still be confirmed later: the provider's retry is then stored once all the same.
            raise Unavailable(f"RabbitMQ did not confirm within {self._timeout}s (publish)") from exc

    async def _publish_together(self, interactions: list[Interaction]) -> Sequence[None]:
        await publish_inbound(self._bus, self._topology, interactions)
        return [None] * len(interactions)
