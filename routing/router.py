"""The router worker, a competing consumer of the interactions the adapters publish (one, or several of one
channel, per delivery).

For each: resolve the sender to a client card, store the interaction once and attach it to a conversation
(one PostgreSQL transaction), then queue the conversation in live state, which reserves the longest-idle
agent atomically, and tell that agent. The delivery is acknowledged only after all of it, so a crash at
any point means a redelivery — and every step is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pydantic import ValidationError

from contactcenter.agents import AgentNoticesPort, Arrival, Placement
from contactcenter.answers import SERVICE_ERRORS
from contactcenter.bus import Bus, Delivery, Subscription
from contactcenter.bus.interactions import Topology, publish_inbound, read_inbound_message
from contactcenter.errors import Unavailable
from contactcenter.identities import sender_identity
from contactcenter.live import LiveStatePort
from contactcenter.logs import add_log_context, log_context
from contactcenter.metrics import RoutingMetrics
from contactcenter.store import ConversationsPort
from routing.placement import ContactPlacement
from schema import Channel, Interaction

log = logging.getLogger(__name__)

# PostgreSQL, Redis or the broker away (a restart, a failover): wait and try again, never dead-letter.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (Unavailable, *SERVICE_ERRORS)
FIRST_PAUSE, LAST_PAUSE = 0.1, 2.0


class Router:
    def __init__(
        self,
        *,
        bus: Bus,
        topology: Topology,
        conversations: ConversationsPort,
        live: LiveStatePort,
        notices: AgentNoticesPort,
        default_region: str,
        metrics: RoutingMetrics,
    ) -> None:
        self._bus = bus
        self._topology = topology
        self._conversations = conversations
        self._placement = ContactPlacement(live, conversations, notices)
        self._notices = notices
        self._default_region = default_region
        self._metrics = metrics
        # Channels whose last contact found no agent free: the next one most likely waits in its queue too, so
        # it is recorded without its card, which its offer reads when an agent is free for it (fresher by
        # then). Only a guess: a contact recorded without its card and offered at once has it read for the
        # offer (one more round trip); one recorded with it that waits has it read again later.
        self._agents_busy: dict[Channel, bool] = {}
        self._stopping = asyncio.Event()

    async def start(self) -> Subscription:
        return await self._bus.subscribe(self._topology.router_queue, self.route_delivery)

    async def route_delivery(self, delivery: Delivery) -> None:
        """Route what one delivery carries. A service that does not answer is waited for, the delivery held:
        handed back, it would come again at once and, after the delivery limit, rest among the dead letters —
        contacts the provider was told we hold. Anything else raises (a poison message reaches that limit)."""
        pause = FIRST_PAUSE
        redelivered = delivery.redelivered
        while True:
            try:
                await self._route_delivery(delivery, redelivered=redelivered)
                return
            except OUTAGE_ERRORS as exc:
                if self._stopping.is_set():
                    raise
                log.warning("routing %s waits for a service: %s", delivery.message_id, type(exc).__name__)
            # Stopping cuts the wait short: the delivery is handed back to another router.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            pause = min(pause * 2, LAST_PAUSE)
            # Our own retry: the attempt before may have reserved an agent without telling it.
            redelivered = True

    def stop(self) -> None:
        """End the waits for services that do not answer, so that the subscription can close."""
        self._stopping.set()

    async def _route_delivery(self, delivery: Delivery, *, redelivered: bool) -> None:
        # A body that does not parse raises: after the delivery limit it rests in the dead-letter queue.
        try:
            interactions = read_inbound_message(delivery.body)
        except ValidationError:
            self._metrics.failures.labels("unreadable").inc()
            raise
        if len(interactions) == 1:
            await self.route(interactions[0], redelivered=redelivered)
            return
        failed = await self._route_together(interactions, redelivered=redelivered)
        if not failed:
            return
        if not redelivered:
            # The whole message again: a passing failure heals, and each contact is offered again at once.
            raise failed[0][1]
        # Failing a second time: each failing contact goes on alone, so that one that can never be routed
        # reaches the dead-letter queue by itself, not with the others of its message.
        for interaction, error in failed:
            with log_context(interaction_id=interaction.id, provider_id=interaction.provider_id):
                # The error's kind only: its text may quote what the customer sent.
                log.warning("interaction failed again (%s): handing it back alone", type(error).__name__)
            await publish_inbound(self._bus, self._topology, [interaction])

    async def _route_together(
        self, interactions: list[Interaction], *, redelivered: bool
    ) -> list[tuple[Interaction, Exception]]:
        """Route the contacts of one message side by side (their database and Redis work leaves in batches);
        answer the ones that failed, each with its failure."""
        outcomes = await asyncio.gather(
            *(self.route(interaction, redelivered=redelivered) for interaction in interactions), return_exceptions=True
        )
        failed: list[tuple[Interaction, Exception]] = []
        for interaction, outcome in zip(interactions, outcomes, strict=True):
            if isinstance(outcome, Exception):
                failed.append((interaction, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome  # a cancellation is not a contact's failure
        return failed

    async def route(self, interaction: Interaction, *, redelivered: bool = False) -> None:
        channel, started = interaction.channel, time.perf_counter()
        with log_context(interaction_id=interaction.id, provider_id=interaction.provider_id, channel=channel):
            try:
                outcome = await self._route(interaction, redelivered=redelivered)
            except Exception as exc:
                self._metrics.failures.labels(channel).inc()
                log.warning("routing failed (%s): the delivery goes back to the queue", type(exc).__name__)
                raise
            log.info("interaction routed: %s", outcome, extra={"outcome": outcome, "redelivered": redelivered})
        self._metrics.routed.labels(channel, outcome).inc()
        self._metrics.seconds.labels(channel).observe(time.perf_counter() - started)

    async def _route(self, interaction: Interaction, *, redelivered: bool) -> str:
        """Route one contact; answer how it ended (a metric's label): queued, to_agent, unrouted or closed."""
        sender = sender_identity(interaction, self._default_region)
        with_card = not self._agents_busy.get(interaction.channel, False)
        recorded = await self._conversations.record_inbound(interaction, sender, with_card=with_card)
        add_log_context(conversation_id=recorded.conversation_id)
        if not recorded.conversation_open:
            return "closed"
        arrival = Arrival(recorded.interaction_id, recorded.conversation_id, recorded.queue_id, recorded.agent_id)
        # A provider's retry of a stored message is not news to the agent; our own redelivery after a failure
        # may be (the first attempt may have died before telling), so it is told again. Our own redelivery may
        # also have reserved an agent and failed before telling it, which would leave the contact waiting for the
        # reservation to expire: it is offered again (same reservation).
        placed = await self._placement.place(
            arrival, interaction, tell_holder=recorded.new or redelivered, offer_again=redelivered
        )
        if placed.placement is Placement.UNROUTED:
            log.warning("no queue serves %s: the interaction waits unrouted", interaction.channel)
        elif placed.placement is Placement.QUEUED:
            # Offered at once (an agent was free): the offer shows what the recording read, not a second read.
            offered_now = any(offer.interaction_id == recorded.interaction_id for offer in placed.changes.offers)
            self._agents_busy[interaction.channel] = not offered_now
            known = recorded.offer_context(interaction) if offered_now else None
            await self._notices.announce(placed.changes, known=known)
        return placed.placement.value
