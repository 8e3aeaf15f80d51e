"""Takes out of live state the work of conversations the database closed by itself (an erased card's, migration
038): a contact that waited leaves its queue, a pending offer of it revoked (`revoked`, reason `erased`); an agent
who held one is told (`closed`, reason `erased`) and freed for its next offer. The process that closed them does
it right after its commit; a router's sweep does what a process that died first left (`live_releases`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from contactcenter.agents import AgentNoticesPort
from contactcenter.clock import now_ms
from contactcenter.errors import NotFound
from contactcenter.live import LiveChanges
from contactcenter.live.state import LiveState
from contactcenter.store.releases import LiveRelease, PendingReleases
from schema.offers import ClosedReason, ConversationClosed, RevokeReason

log = logging.getLogger(__name__)

# Past this, a release the closing process has not done is taken for lost with it: a router's sweep does it. Far
# longer than the few Redis calls the closing process makes right after its commit.
OVERDUE_SECONDS = 30.0
SWEEP_BATCH = 100


class ClosureNotices(AgentNoticesPort, Protocol):
    """Tells agents what live state decided, and a conversation closed under them (`notices.AgentNotices`)."""

    async def closed(self, notice: ConversationClosed) -> None: ...


class LiveReleases:
    def __init__(
        self,
        pending: PendingReleases,
        live: LiveState,
        notices: ClosureNotices,
        *,
        overdue_seconds: float = OVERDUE_SECONDS,
    ) -> None:
        self._pending = pending
        self._live = live
        self._notices = notices
        self._overdue_seconds = overdue_seconds

    async def release(self, releases: Sequence[LiveRelease]) -> None:
        """Right after the commit that closed them. A failure leaves the rest to the sweep."""
        for release in releases:
            await self._take_back(release)
        await self._pending.done([release.conversation_id for release in releases])

    async def sweep(self) -> None:
        """What a process that closed conversations left undone when it died (a router's periodic job)."""
        async with self._pending.overdue(self._overdue_seconds, SWEEP_BATCH) as overdue:
            for release in overdue:
                log.warning("releasing conversation %s, which its closing process left", release.conversation_id)
                await self._take_back(release)

    async def _take_back(self, release: LiveRelease) -> None:
        """Idempotent: a release done twice (a sweep after a slow process) changes nothing the second time but
        tells the agent again, which its desktop ignores."""
        if release.agent_id is None:
            # An agent who accepted it at this instant (live state's `assigned`) finds it closed in PostgreSQL
            # and does not keep it (the gateway's accept); its task is marked withdrawn, so that a router that
            # recorded its contact just before the erasure queues nothing.
            withdrawal = await self._live.withdraw(release.conversation_id, now_ms(), abandoned=False)
            await self._notices.announce(withdrawal.changes, revoked_because=RevokeReason(release.reason))
            return
        try:
            # Not worked: no wrap-up, the agent takes its next offer at once.
            changes = await self._live.complete(release.agent_id, release.conversation_id, now_ms(), worked=False)
        except NotFound:
            changes = LiveChanges()  # freed already: by an earlier release, or the agent's own `complete`
        notice = ConversationClosed(
            agent_id=release.agent_id, conversation_id=release.conversation_id, reason=ClosedReason(release.reason)
        )
        await self._notices.closed(notice)
        await self._notices.announce(changes)
