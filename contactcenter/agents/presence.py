"""Tells the agent holding a customer's conversation what the customer does on a channel with a live presence
(web chat: typing, ended): found by the customer's identity, sent as a notice wherever the agent's socket is."""

from __future__ import annotations

from contactcenter.agents.notices import AgentNotices
from contactcenter.store.conversations import Conversations
from schema import Channel, IdentityKind
from schema.offers import CustomerActivity


class AgentPresence:
    def __init__(self, conversations: Conversations, notices: AgentNotices) -> None:
        self._conversations = conversations
        self._notices = notices

    async def customer_activity(
        self, kind: IdentityKind, address: str, channel: Channel, activity: CustomerActivity
    ) -> None:
        for conversation_id, agent_id in await self._conversations.holders(str(kind), address, str(channel)):
            await self._notices.customer(agent_id, conversation_id, activity)
