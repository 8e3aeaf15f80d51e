"""Tells the agent holding a customer's conversation what the customer does on a channel with a live presence
(web chat: typing, ended): found by the customer's identity, sent as a notice wherever the agent's socket is."""

from __future__ import annotations

import uuid

from contactcenter.agents.notices import AgentNotices
from contactcenter.agents.outbound import Claims
from contactcenter.store.conversations import Conversations
from schema import Channel, IdentityKind
from schema.offers import CustomerActivity, CustomerClaims, PossibleMatch

# How much a claimed identity found on a card says it is the same customer: not proof, a reason to ask; an
# email the customer proved says more, and is still not merged without the agent.
CLAIM_SCORE = 0.5
PROVED_SCORE = 0.9


class AgentPresence:
    def __init__(self, conversations: Conversations, notices: AgentNotices) -> None:
        self._conversations = conversations
        self._notices = notices

    async def customer_activity(
        self, kind: IdentityKind, address: str, channel: Channel, activity: CustomerActivity
    ) -> None:
        for conversation_id, agent_id in await self._conversations.holders(str(kind), address, str(channel)):
            await self._notices.customer(agent_id, conversation_id, activity)

    async def customer_claims(self, kind: IdentityKind, address: str, channel: Channel, claims: Claims) -> None:
        holders = await self._conversations.holders(str(kind), address, str(channel))
        if not holders:
            return
        claimed = [(k, v) for k, v in (("email", claims.email), ("phone", claims.phone)) if v]
        found = await self._conversations.cards_holding(claimed, (str(kind), address)) if claimed else []
        reasons: dict[uuid.UUID, list[str]] = {}
        for client_id, claimed_kind in found:
            reasons.setdefault(client_id, []).append(f"holds the {claimed_kind} the customer claims (not verified)")
        matches = [
            PossibleMatch(client_id=client_id, score=CLAIM_SCORE, reasons=why) for client_id, why in reasons.items()
        ]
        for conversation_id, agent_id in holders:
            notice = CustomerClaims(
                agent_id=agent_id,
                conversation_id=conversation_id,
                name=claims.name,
                email=claims.email,
                email_verified=claims.email_verified,
                phone=claims.phone,
                possible_matches=matches,
            )
            await self._notices.claims(notice)
