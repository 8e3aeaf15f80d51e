"""The agent side: notices to agents over the bus, and the desktop WebSocket gateway.

`AgentNoticesPort` is what routing needs to tell agents (`notices.AgentNotices` is the adapter); the outbound
port, how a reply leaves on a channel, is `outbound.ReplySender`."""

from __future__ import annotations

import uuid
from typing import Protocol

from contactcenter.live import LiveChanges
from contactcenter.store import InteractionInContext
from schema import Interaction
from schema.offers import RevokeReason


class AgentNoticesPort(Protocol):
    """Tells agents what live state decided, wherever their sockets are."""

    async def announce(
        self,
        changes: LiveChanges,
        *,
        revoked_because: RevokeReason = RevokeReason.AGENT_UNAVAILABLE,
        known: InteractionInContext | None = None,
    ) -> None:
        """Send the revocations and offers; an offer of the interaction in `known` shows it as it is there."""
        ...

    async def message(self, agent_id: uuid.UUID, conversation_id: uuid.UUID, interaction: Interaction) -> None:
        """A new contact in a conversation the agent holds."""
        ...
