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
# email the customer proved says more (it merges by itself only with a card holding it verified:
# contactcenter/store/proofs.py — then it is the customer's own card, no match).
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
        card = await self._conversations.card_of(str(kind), address)
        claimed = [(k, v) for k, v in (("email", claims.email), ("phone", claims.phone)) if v]
        found = await self._conversations.cards_holding(claimed, card) if claimed else []
        reasons: dict[uuid.UUID, list[str]] = {}
        scores: dict[uuid.UUID, float] = {}
        for client_id, claimed_kind in found:
            proved = claimed_kind == "email" and claims.email_verified
            why = f"holds the {claimed_kind} the customer " + ("proved" if proved else "claims (not verified)")
            reasons.setdefault(client_id, []).append(why)
            scores[client_id] = max(scores.get(client_id, 0.0), PROVED_SCORE if proved else CLAIM_SCORE)
        matches = [
            PossibleMatch(client_id=client_id, score=scores[client_id], reasons=why)
            for client_id, why in reasons.items()
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
                client_id=card,
            )
            await self._notices.claims(notice)
