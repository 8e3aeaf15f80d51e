"""An agent's reply: sent out on the conversation's own channel, then recorded on the client's timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contactcenter.agents.outbound import OutboundMessage, ReplyNotTaken, ReplyRefused, ReplySender
from contactcenter.errors import Invalid
from contactcenter.store.conversations import Conversations, ReplyRoute
from schema import Channel, Direction, Interaction


class Replies:
    def __init__(self, conversations: Conversations, senders: dict[Channel, ReplySender]) -> None:
        self._conversations = conversations
        self._senders = senders

    async def reply(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, text: str) -> Interaction:
        route = await self._conversations.reply_route(conversation_id, agent_id)
        sender = self._senders.get(route.channel)
        if sender is None:
            raise Invalid(f"replies on {route.channel} are not supported yet", field="conversation_id")
        message = OutboundMessage(
            to_address=route.client_address,
            from_address=route.our_address,
            body=text,
            in_reply_to=route.last_inbound_id,
        )
        try:
            provider_id = await sender.send(message)
        except (ReplyRefused, ReplyNotTaken) as exc:
            # What the customer did not get is on the timeline too, saying so: the agent sees it was not sent.
            body = f"(not sent: {exc.message})\n\n{text}"
            unsent = _outbound(route, sender, message, exc.provider_id, body[:MAX_BODY])
            await self._conversations.record_unsent(route, unsent, agent_id, exc.message)
            raise
        interaction = _outbound(route, sender, message, provider_id, text)
        await self._conversations.record_outbound(route, interaction, agent_id)
        return interaction


# An interaction's body at most (schema.Interaction).
MAX_BODY = 100_000


def _outbound(
    route: ReplyRoute, sender: ReplySender, message: OutboundMessage, provider_id: str, body: str
) -> Interaction:
    return Interaction(
        channel=route.channel,
        direction=Direction.OUTBOUND,
        provider_id=provider_id,
        from_address=message.from_address,
        sender_kind=sender.address_kind,
        to_address=message.to_address,
        from_verified=True,
        body=body,
        received_at=datetime.now(UTC),
    )
