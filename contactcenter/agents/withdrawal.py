"""A contact that leaves before any agent took it (a caller who hangs up while waiting): its work taken back
from live state first (so an agent accepting at that moment keeps it), then its conversation closed. Live state
then queues it nowhere, also when the router that recorded it queues it only after this (withdraw.lua); one that
left before it was recorded at all is the recording's to close (migration 030's departures)."""

from __future__ import annotations

import logging

from contactcenter.agents import AgentNoticesPort, Withdrawn
from contactcenter.clock import now_ms
from contactcenter.live.state import LiveState
from contactcenter.store.waiting import WaitingContacts
from schema import Channel
from schema.offers import RevokeReason

log = logging.getLogger(__name__)


class Withdrawals:
    def __init__(self, waiting: WaitingContacts, live: LiveState, notices: AgentNoticesPort) -> None:
        self._waiting = waiting
        self._live = live
        self._notices = notices

    async def withdraw(self, channel: Channel, provider_id: str, *, abandoned: bool) -> Withdrawn | None:
        contact = await self._waiting.find(channel, provider_id)
        if contact is None:
            return None
        withdrawal = await self._live.withdraw(
            contact.conversation_id,
            now_ms(),
            abandoned=abandoned,
            interaction_id=contact.interaction_id,
            queue_id=contact.queue_id,
        )
        if withdrawal.taken:
            return None
        await self._notices.announce(withdrawal.changes, revoked_because=RevokeReason.WITHDRAWN)
        if not await self._waiting.close_unanswered(contact.conversation_id, abandoned=abandoned):
            return None
        revoked = withdrawal.changes.revoked
        log.info("contact withdrawn before an agent took it", extra={"conversation_id": contact.conversation_id})
        return Withdrawn(contact.interaction_id, contact.conversation_id, revoked[0].agent_id if revoked else None)
