"""Queue a contact's work, or tell the agent who holds its conversation: written once, for the router (every
contact it routes) and the agent gateway (a contact found in a conversation closed before any agent saw it),
which gets it from the host as `contactcenter.agents.PlacementPort`. The rule is
`routing.policies.CONTACT_FOR_ITS_HOLDER`."""

from __future__ import annotations

from contactcenter.agents import AgentNoticesPort, Arrival, Placed, Placement
from contactcenter.clock import now_ms
from contactcenter.live import LiveChanges, LiveStatePort, Task
from contactcenter.store import ConversationsPort
from schema import Interaction


class ContactPlacement:
    def __init__(self, live: LiveStatePort, conversations: ConversationsPort, notices: AgentNoticesPort) -> None:
        self._live = live
        self._conversations = conversations
        self._notices = notices

    async def place(
        self,
        arrival: Arrival,
        interaction: Interaction | None = None,
        *,
        tell_holder: bool = True,
        offer_again: bool = False,
    ) -> Placed:
        """Queue the contact's work unless an agent holds its conversation; tell that agent of the contact — also
        one that accepted it after the store read it as waiting, which live state answers (`held_by`). The
        offers queuing made are the caller's to announce."""
        holder, changes = arrival.agent_id, LiveChanges()
        if holder is None:
            if arrival.queue_id is None:
                return Placed(Placement.UNROUTED, changes)
            task = Task(arrival.conversation_id, arrival.queue_id, arrival.interaction_id)
            enqueued = await self._live.enqueue(task, now_ms(), offer_again=offer_again)
            if enqueued.held_by is None:
                return Placed(Placement.QUEUED, enqueued)
            holder, changes = enqueued.held_by, enqueued
        if tell_holder:
            if interaction is None:
                interaction = (await self._conversations.interaction(arrival.interaction_id)).interaction
            await self._notices.message(holder, arrival.conversation_id, interaction)
        return Placed(Placement.TO_AGENT, changes)
