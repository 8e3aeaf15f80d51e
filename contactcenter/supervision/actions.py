"""What a supervisor does to its queues: set an agent's state, move waiting work to another queue. Live state
changes first (its script writes its own events); then the audit record and its `supervisor.acted` event are
written in one PostgreSQL transaction, with the conversation's new queue for a move."""

from __future__ import annotations

import uuid

import asyncpg

from contactcenter.agents.notices import AgentNotices, Relay
from contactcenter.auth import Viewer
from contactcenter.clock import now_ms
from contactcenter.errors import Forbidden, Invalid, NotFound
from contactcenter.live.state import LiveState
from contactcenter.store.directory import Directory
from schema.desktop import AgentState, StateChanged

AUDIT = """
INSERT INTO supervisor_actions (id, actor, action, agent_id, conversation_id, queue_id, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
"""
ACTED = """
INSERT INTO events (type, subject, partition_key, data)
VALUES ('supervisor.acted', $1::text, 'supervisor:' || coalesce($2::text, 'admin'), $3::jsonb)
"""
REQUEUE = "UPDATE conversations SET queue_id = $2 WHERE id = $1 AND state = 'open'"


class SupervisorActions:
    def __init__(
        self, pool: asyncpg.Pool, live: LiveState, directory: Directory, notices: AgentNotices, relay: Relay
    ) -> None:
        self._pool = pool
        self._live = live
        self._directory = directory
        self._notices = notices
        self._relay = relay

    async def set_agent_state(self, viewer: Viewer, agent_id: uuid.UUID, state: AgentState) -> None:
        agent = await self._directory.agent(agent_id)
        if agent is None or not any(viewer.sees(q) for q in agent.queue_ids):
            raise NotFound(f"no agent {agent_id} in the queues you supervise", field="agent_id")
        changes = await self._live.set_agent_state(agent.id, state, agent.queue_ids, now_ms())
        await self._notices.announce(changes)
        # The desktop hears it as it hears its own state change.
        await self._relay.send(agent.id, StateChanged(state=state).model_dump_json().encode())
        await self._audit(viewer, "agent_state", agent_id=agent.id, state=state)

    async def move(self, viewer: Viewer, conversation_id: uuid.UUID, queue_name: str) -> uuid.UUID:
        """Move the conversation's waiting work to the queue named; the queue it left."""
        target = await self._directory.queue_id(queue_name)
        if target is None or not viewer.sees(target):
            raise Invalid(f"no queue {queue_name!r} that you supervise", field="queue")
        current = await self._live.task_queue(conversation_id)
        if current is None or not viewer.sees(current):
            raise NotFound(f"no work of conversation {conversation_id} waits in your queues", field="conversation_id")
        if current != target and viewer.queue_ids is not None and target not in viewer.queue_ids:
            raise Forbidden("you do not supervise that queue", field="queue")
        previous, changes = await self._live.move(conversation_id, target, now_ms())
        await self._notices.announce(changes)
        await self._audit(
            viewer, "move", conversation_id=conversation_id, queue_id=target, previous_queue_id=previous, requeue=True
        )
        return previous

    async def _audit(
        self,
        viewer: Viewer,
        action: str,
        *,
        agent_id: uuid.UUID | None = None,
        conversation_id: uuid.UUID | None = None,
        queue_id: uuid.UUID | None = None,
        state: str | None = None,
        previous_queue_id: uuid.UUID | None = None,
        requeue: bool = False,
    ) -> None:
        action_id = uuid.uuid4()
        actor = viewer.person_id if viewer.role == "supervisor" else None
        detail = {"state": state, "previous_queue_id": str(previous_queue_id) if previous_queue_id else None}
        event = {
            "action_id": str(action_id),
            "supervisor_id": str(actor) if actor else None,
            "action": action,
            "agent_id": str(agent_id) if agent_id else None,
            "conversation_id": str(conversation_id) if conversation_id else None,
            "queue_id": str(queue_id) if queue_id else None,
            "state": state,
        }
        async with self._pool.acquire() as conn, conn.transaction():
            if requeue:
                await conn.execute(REQUEUE, conversation_id, queue_id)
            await conn.execute(AUDIT, action_id, actor, action, agent_id, conversation_id, queue_id, detail)
            await conn.execute(ACTED, str(action_id), str(actor) if actor else None, event)
