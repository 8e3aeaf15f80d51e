"""An agent's reply on a chat: written to the visitor's transcript, then sent to the visitor's sockets at once,
wherever they are (`visitors.VisitorSockets.tell_visitor`). A visitor with no socket open finds it in the next
`welcome`."""

from __future__ import annotations

import uuid

from channels.webchat.transcript import Transcript
from channels.webchat.visitors import VisitorSockets
from contactcenter.agents.outbound import OutboundMessage
from contactcenter.errors import Invalid
from schema import IdentityKind


class ChatReplySender:
    address_kind = IdentityKind.VISITOR

    def __init__(self, transcript: Transcript, visitors: VisitorSockets) -> None:
        self._transcript = transcript
        self._visitors = visitors
        self.max_length = visitors.max_text

    async def send(self, message: OutboundMessage) -> str:
        if len(message.body) > self.max_length:
            raise Invalid(f"a chat message carries at most {self.max_length} characters", field="text")
        try:
            visitor_id = uuid.UUID(message.to_address)
        except ValueError:
            raise Invalid("this conversation has no chat visitor to answer", field="conversation_id") from None
        message_id = uuid.uuid4().hex
        entry, _ = await self._transcript.append(visitor_id, "agent", message_id, message.body)
        await self._visitors.tell_visitor(visitor_id, entry)
        return f"chat:agent:{message_id}"
