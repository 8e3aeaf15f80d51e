"""Rebuilds live state from PostgreSQL when Redis has lost it (a restart without persistence, a failover):
every open conversation goes back — accepted ones to their agents, the rest to their queues in their
original order — so no contact waits forever in a queue Redis forgot; and every call in progress occupies its
agent again, so an agent on the phone is offered nothing until its call ends."""

from __future__ import annotations

import logging
import uuid

from contactcenter.agents import AgentNoticesPort
from contactcenter.clock import now_ms
from contactcenter.live import LiveStatePort, Task
from contactcenter.store import CallOccupationsPort, ConversationsPort

log = logging.getLogger(__name__)

# A router that dies mid-rebuild lets another one take over after this long.
REBUILD_CLAIM_MS = 60_000


class LiveStateRecovery:
    def __init__(
        self,
        live: LiveStatePort,
        conversations: ConversationsPort,
        notices: AgentNoticesPort,
        calls: CallOccupationsPort,
    ) -> None:
        self._live = live
        self._conversations = conversations
        self._notices = notices
        self._calls = calls

    async def check(self) -> None:
        if not await self._live.claim_rebuild(uuid.uuid4().hex, REBUILD_CLAIM_MS):
            return
        restored = 0
        for conversation in await self._conversations.open_in_queues():
            task = Task(conversation.conversation_id, conversation.queue_id, conversation.interaction_id)
            changes = await self._live.restore(task, conversation.opened_ms, conversation.agent_id, now_ms())
            await self._notices.announce(changes)
            restored += 1
        calls = await self._restore_calls()
        # Only now may gateways make their agents available again: those on a call stay out of every queue.
        await self._live.finish_rebuild()
        if restored or calls:
            log.warning(
                "live state was missing in Redis: rebuilt %d open conversations and %d calls from PostgreSQL",
                restored,
                calls,
            )

    async def _restore_calls(self) -> int:
        """Each call in progress occupies its agent again. A call whose end came while this ran was deleted from
        PostgreSQL before live state was told to free its agent: read back after occupying, it is freed here."""
        calls = await self._calls.in_progress()
        for call in calls:
            await self._live.occupy(call.agent_id, call.call_sid, call.until_ms, now_ms())
        ended = {call.call_sid for call in calls} - await self._calls.still_on([call.call_sid for call in calls])
        for call_sid in ended:
            await self._notices.announce(await self._live.release(call_sid, now_ms()))
        return len(calls)
