"""Rebuilds live state from PostgreSQL when Redis has lost it (a restart without persistence, a failover):
every open conversation goes back — accepted ones to their agents, the rest to their queues in their
original order — so no contact waits forever in a queue Redis forgot."""

from __future__ import annotations

import logging
import uuid

from contactcenter.agents import AgentNoticesPort
from contactcenter.clock import now_ms
from contactcenter.live import LiveStatePort, Task
from contactcenter.store import ConversationsPort

log = logging.getLogger(__name__)

# A router that dies mid-rebuild lets another one take over after this long.
REBUILD_CLAIM_MS = 60_000


class LiveStateRecovery:
    def __init__(self, live: LiveStatePort, conversations: ConversationsPort, notices: AgentNoticesPort) -> None:
        self._live = live
        self._conversations = conversations
        self._notices = notices

    async def check(self) -> None:
        if not await self._live.claim_rebuild(uuid.uuid4().hex, REBUILD_CLAIM_MS):
            return
        restored = 0
        for conversation in await self._conversations.open_in_queues():
            task = Task(conversation.conversation_id, conversation.queue_id, conversation.interaction_id)
            changes = await self._live.restore(task, conversation.opened_ms, conversation.agent_id, now_ms())
            await self._notices.announce(changes)
            restored += 1
        await self._live.finish_rebuild()
        if restored:
            log.warning("live state was missing in Redis: rebuilt %d open conversations from PostgreSQL", restored)
