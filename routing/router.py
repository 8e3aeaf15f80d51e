"""The router worker: one inbound interaction at a time per delivery, as a competing consumer.

For each: resolve the sender to a client card, store the interaction once and attach it to a conversation
(one PostgreSQL transaction), then queue the conversation in live state, which reserves the longest-idle
agent atomically, and tell that agent. The delivery is acknowledged only after all of it, so a crash at
any point means a redelivery — and every step is idempotent.
"""

from __future__ import annotations

import logging

from contactcenter.agents.notices import AgentNotices
from contactcenter.bus import Bus, Delivery, Subscription
from contactcenter.identities import sender_identity
from contactcenter.live import Task, now_ms
from contactcenter.live.state import LiveState
from contactcenter.store.conversations import Conversations
from contactcenter.topology import Topology
from schema import Interaction

log = logging.getLogger(__name__)


class Router:
    def __init__(
        self,
        *,
        bus: Bus,
        topology: Topology,
        conversations: Conversations,
        live: LiveState,
        notices: AgentNotices,
        default_region: str,
    ) -> None:
        self._bus = bus
        self._topology = topology
        self._conversations = conversations
        self._live = live
        self._notices = notices
        self._default_region = default_region

    async def start(self) -> Subscription:
        return await self._bus.subscribe(self._topology.router_queue, self.route_delivery)

    async def route_delivery(self, delivery: Delivery) -> None:
        # A body that does not parse raises: after the delivery limit it rests in the dead-letter queue.
        await self.route(Interaction.model_validate_json(delivery.body), redelivered=delivery.redelivered)

    async def route(self, interaction: Interaction, *, redelivered: bool = False) -> None:
        sender = sender_identity(interaction, self._default_region)
        recorded = await self._conversations.record_inbound(interaction, sender)
        if not recorded.conversation_open:
            return
        if recorded.agent_id is not None:
            # A provider's retry of a stored message is not news to the agent; our own redelivery after a
            # failure may be (the first attempt may have died before telling), so it is told again.
            if recorded.new or redelivered:
                await self._notices.message(recorded.agent_id, recorded.conversation_id, interaction)
            return
        if recorded.queue_id is None:
            log.warning("no queue serves %s: interaction %s waits unrouted", interaction.channel, interaction.id)
            return
        task = Task(recorded.conversation_id, recorded.queue_id, recorded.interaction_id)
        # Our own redelivery: the attempt before may have reserved an agent and failed before telling it, which
        # would leave the contact waiting for the reservation to expire; it is offered again (same reservation).
        changes = await self._live.enqueue(task, now_ms(), offer_again=redelivered)
        # Offered at once (an agent was free): the offer shows what the recording read, not a second read.
        offered_now = any(offer.interaction_id == recorded.interaction_id for offer in changes.offers)
        await self._notices.announce(changes, known=recorded.offer_context(interaction) if offered_now else None)
