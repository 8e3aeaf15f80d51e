"""What the voice channel keeps in PostgreSQL (migrations 013 and 030): the menus of the numbers we answer, each call's
state (which only moves forward), the queue a caller chose and where agents take calls. The events of a call's
changes are written in the statement that makes them (the outbox)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from schema.voice import VoiceEndpoint, VoiceMenu

# Twilio's CallStatus values, each with its rank: a status of a lower or equal rank than the call's changes
# nothing (callbacks come late, twice, out of order).
STATUS_RANKS = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "failed": 3,
    "no-answer": 3,
    "canceled": 3,
}
FINAL_RANK = 3

MENU_OF_NUMBER = """
SELECT greeting, prompt, options, time_zone, hours, max_wait_seconds FROM voice_menus WHERE number = $1
"""
SAVE_MENU = """
INSERT INTO voice_menus (number, greeting, prompt, options, time_zone, hours, max_wait_seconds)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (number) DO UPDATE SET greeting = $2, prompt = $3, options = $4, time_zone = $5, hours = $6,
                                   max_wait_seconds = $7, updated_at = now()
"""
DELETE_MENU = "DELETE FROM voice_menus WHERE number = $1 RETURNING number"
CALL_ARRIVED = """
INSERT INTO voice_calls (call_sid, from_number, to_number, status, rank) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (call_sid) DO NOTHING
"""
# The queue the caller chose, for the router's recording (cc_record_inbound, whose stored interaction deletes it:
# migration 023), and when it started waiting. Choices a day old, whose contact never came, go on the way (a
# bounded batch, skipping rows another call deletes).
CALL_ENQUEUED = """
WITH choice AS (
    INSERT INTO contact_queue_choices (channel, provider_id, queue_name) SELECT 'voice', $1, $2::text
    WHERE $2 IS NOT NULL
    ON CONFLICT (channel, provider_id) DO NOTHING
), stale AS (
    DELETE FROM contact_queue_choices WHERE (channel, provider_id) IN (
        SELECT channel, provider_id FROM contact_queue_choices WHERE chosen_at < now() - interval '1 day'
        ORDER BY chosen_at LIMIT 100 FOR UPDATE SKIP LOCKED)
)
UPDATE voice_calls SET queue_name = coalesce(queue_name, $2), enqueued_at = coalesce(enqueued_at, now())
WHERE call_sid = $1
"""
# Where the caller's open conversation is: a known caller skips the menu. Its voice conversation first (the
# agent who holds it takes the call), else the newest on another channel whose queue also serves voice.
OPEN_CONVERSATION_OF_CALLER = """
SELECT q.name AS queue_name, CASE WHEN v.channel = 'voice' THEN v.agent_id END AS agent_id
FROM identities i
JOIN conversations v ON v.client_id = i.client_id AND v.state = 'open'
JOIN queues q ON q.id = v.queue_id
WHERE i.kind = 'phone' AND i.value = $1 AND 'voice' = ANY (q.channels)
ORDER BY v.channel = 'voice' DESC, v.opened_at DESC LIMIT 1
"""
CALL_OF_SID = """
SELECT rank, agent_id, connected_at IS NOT NULL AS connected, queue_name, from_number, to_number,
       callback_requested, abandoned
FROM voice_calls WHERE call_sid = $1
"""
CALL_CONNECTED = """
WITH changed AS (
    UPDATE voice_calls SET connected_at = now(), agent_id = $2, rank = greatest(rank, 2),
                           status = CASE WHEN rank < 2 THEN 'in-progress' ELSE status END
    WHERE call_sid = $1 AND rank < 3 AND connected_at IS NULL
    RETURNING call_sid, agent_id, queue_name
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'call.connected', call_sid, 'call:' || call_sid,
       jsonb_build_object('call_sid', call_sid, 'agent_id', agent_id, 'queue', queue_name)
FROM changed
"""
# The call an agent is on in a conversation (connected to it, not over): the one its transfer hands off.
CALL_OF_AGENT = """
SELECT c.call_sid FROM interactions x
JOIN voice_calls c ON c.call_sid = x.provider_id
WHERE x.conversation_id = $1 AND x.channel = 'voice' AND x.direction = 'inbound'
  AND c.agent_id = $2 AND c.connected_at IS NOT NULL AND c.rank < 3
ORDER BY c.connected_at DESC LIMIT 1
"""
# The agent handed the call to a queue: it waits there again, connected to nobody, so the next accept connects it
# and a hang-up before that is an abandon (CALL_STATUS). `call.transferred` in the same statement.
CALL_HANDED_OFF = """
WITH changed AS (
    UPDATE voice_calls SET connected_at = NULL, agent_id = NULL, queue_name = $3, enqueued_at = now()
    WHERE call_sid = $1 AND agent_id = $2 AND connected_at IS NOT NULL AND rank < 3
    RETURNING call_sid, queue_name
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'call.transferred', call_sid, 'call:' || call_sid,
       jsonb_build_object('call_sid', call_sid, 'agent_id', $2::uuid, 'queue', queue_name)
FROM changed
RETURNING subject
"""
# The contact's departure lock (migration 030): a departure is written holding it, so that the router's recording
# of the call either sees the departure or is committed before it (and the call's withdrawal then finds it).
DEPARTURE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('departure:voice:' || $1, 0))"
# A status moves the call forward or changes nothing. The final one ends it: abandoned when the caller waited
# in a queue and no agent was connected; its events written in the same statement, and its departure, which the
# router's recording reads should the call still be on its way there (a hang-up before it was recorded). A day
# old, a departure nobody read goes (a bounded batch): its call was recorded before it.
CALL_STATUS = """
WITH changed AS (
    UPDATE voice_calls c SET
        status = $2, rank = $3,
        ended_at = CASE WHEN $3 = 3 THEN now() END,
        duration_seconds = CASE WHEN $3 = 3 THEN $4::integer END,
        abandoned = ($3 = 3 AND c.connected_at IS NULL AND c.enqueued_at IS NOT NULL AND NOT c.callback_requested),
        waited_seconds = CASE WHEN $3 = 3 AND c.connected_at IS NULL AND c.enqueued_at IS NOT NULL
                                  AND NOT c.callback_requested
                              THEN extract(epoch FROM now() - c.enqueued_at)::integer END
    WHERE c.call_sid = $1 AND c.rank < $3
    RETURNING c.call_sid, c.rank, c.status, c.queue_name, c.agent_id, c.duration_seconds, c.abandoned,
              c.waited_seconds
), abandoned AS (
    INSERT INTO events (type, subject, partition_key, data)
    SELECT 'call.abandoned', call_sid, 'call:' || call_sid,
           jsonb_build_object('call_sid', call_sid, 'queue', queue_name, 'waited_seconds', waited_seconds)
    FROM changed WHERE abandoned
), ended AS (
    INSERT INTO events (type, subject, partition_key, data)
    SELECT 'call.ended', call_sid, 'call:' || call_sid,
           jsonb_build_object('call_sid', call_sid, 'status', status, 'agent_id', agent_id,
                              'duration_seconds', duration_seconds)
    FROM changed WHERE rank = 3
), departed AS (
    INSERT INTO contact_departures (channel, provider_id, reason)
    SELECT 'voice', call_sid, 'abandoned' FROM changed WHERE abandoned
    ON CONFLICT (channel, provider_id) DO NOTHING
), stale AS (
    DELETE FROM contact_departures WHERE (channel, provider_id) IN (
        SELECT channel, provider_id FROM contact_departures WHERE departed_at < now() - interval '1 day'
        ORDER BY departed_at LIMIT 100 FOR UPDATE SKIP LOCKED)
)
SELECT abandoned FROM changed
"""
CALLBACK_REQUESTED = """
UPDATE voice_calls SET callback_requested = true
WHERE call_sid = $1 AND connected_at IS NULL AND rank < 3 AND enqueued_at IS NOT NULL
RETURNING rank, agent_id, connected_at IS NOT NULL AS connected, queue_name, from_number, to_number,
          callback_requested
"""
# The agent who accepted a callback request is called, then the caller: the request is answered once. The call
# placed ($3, from our number to the caller's) is a call of its own, whose status callbacks end it.
CALLBACK_PLACED = """
WITH changed AS (
    UPDATE voice_calls SET connected_at = now(), agent_id = $2
    WHERE call_sid = $1 AND callback_requested AND connected_at IS NULL
    RETURNING call_sid, agent_id, queue_name, from_number, to_number
), placed AS (
    INSERT INTO voice_calls (call_sid, from_number, to_number, status, rank, agent_id)
    SELECT $3, to_number, from_number, 'queued', 0, agent_id FROM changed
    ON CONFLICT (call_sid) DO UPDATE SET from_number = EXCLUDED.from_number, to_number = EXCLUDED.to_number,
                                         agent_id = EXCLUDED.agent_id
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'call.connected', call_sid, 'call:' || call_sid,
       jsonb_build_object('call_sid', call_sid, 'agent_id', agent_id, 'queue', queue_name)
FROM changed
RETURNING subject
"""
# The end of a call we placed came before the REST answer naming it was recorded: the call is known from now on
# (numbers and agent unknown yet), so its status is kept; the recording of the placement then fills them in
# (CALL_PLACED, CALLBACK_PLACED: ON CONFLICT) and finds it ended.
PLACED_CALL_SEEN = """
INSERT INTO voice_calls (call_sid, from_number, to_number, status, rank) VALUES ($1, '', '', 'queued', 0)
ON CONFLICT (call_sid) DO NOTHING
"""
# The caller left the queue for voicemail: it no longer waits (so hanging up later is no abandon); its departure
# is written for the router's recording, should the call still be on its way there (CALL_STATUS).
CALL_LEFT_QUEUE = """
WITH left_queue AS (
    UPDATE voice_calls SET enqueued_at = NULL WHERE call_sid = $1 AND connected_at IS NULL
    RETURNING call_sid, callback_requested
)
INSERT INTO contact_departures (channel, provider_id, reason)
SELECT 'voice', call_sid, 'withdrawn' FROM left_queue WHERE NOT callback_requested
ON CONFLICT (channel, provider_id) DO NOTHING
"""
VOICEMAIL_RECEIVED = """
INSERT INTO events (type, subject, partition_key, data)
VALUES ('voicemail.received', $1, 'call:' || $1,
        jsonb_build_object('call_sid', $1::text, 'recording_sid', $2::text, 'duration_seconds', $3::integer))
"""
# The client's phone numbers, oldest first; NULL when there is no such client.
PHONES_OF_CLIENT = """
SELECT CASE WHEN EXISTS (SELECT 1 FROM clients WHERE id = $1)
            THEN coalesce((SELECT array_agg(value ORDER BY created_at) FROM identities
                           WHERE client_id = $1 AND kind = 'phone'), '{}') END
"""
FIRST_NUMBER = "SELECT number FROM voice_menus ORDER BY number LIMIT 1"
# An agent's call out, on the client's timeline (an outbound voice interaction outside any conversation), with
# its event and its row among the calls, in one statement.
CALL_PLACED = """
WITH placed AS (
    INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                              from_address, to_address, from_verified, body, received_at)
    VALUES ($1, 'voice', 'outbound', $2, $3, NULL, $4, $5, true, $6, now())
    RETURNING id, provider_id, client_id
), call AS (
    INSERT INTO voice_calls (call_sid, from_number, to_number, status, rank, connected_at, agent_id)
    VALUES ($2, $4, $5, 'queued', 0, NULL, $7)
    ON CONFLICT (call_sid) DO UPDATE SET from_number = $4, to_number = $5, agent_id = $7
)
INSERT INTO events (type, subject, partition_key, data)
SELECT 'call.placed', provider_id, 'call:' || provider_id,
       jsonb_build_object('call_sid', provider_id, 'agent_id', $7::uuid, 'client_id', client_id,
                          'interaction_id', id)
FROM placed
"""
ENDPOINT_OF_AGENT = "SELECT kind, address FROM voice_endpoints WHERE agent_id = $1"
SAVE_ENDPOINT = """
INSERT INTO voice_endpoints (agent_id, kind, address)
SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM agents WHERE id = $1)
ON CONFLICT (agent_id) DO UPDATE SET kind = $2, address = $3
RETURNING agent_id
"""


@dataclass(frozen=True)
class OpenConversation:
    """A known caller's open conversation: its queue, and the agent who holds it when it is a call's."""

    queue_name: str
    agent_id: uuid.UUID | None


@dataclass(frozen=True)
class CallState:
    rank: int
    agent_id: uuid.UUID | None
    connected: bool
    queue_name: str | None
    from_number: str
    to_number: str
    callback_requested: bool
    abandoned: bool = False


def _call_state(row: asyncpg.Record) -> CallState:
    return CallState(
        row["rank"],
        row["agent_id"],
        row["connected"],
        row["queue_name"],
        row["from_number"],
        row["to_number"],
        row["callback_requested"],
        bool(row.get("abandoned")),
    )


class VoiceStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def menu(self, number: str) -> VoiceMenu | None:
        row = await self._pool.fetchrow(MENU_OF_NUMBER, number)
        if row is None:
            return None
        return VoiceMenu.model_validate(dict(row))

    async def save_menu(self, number: str, menu: VoiceMenu) -> None:
        data = menu.model_dump(mode="json")
        await self._pool.execute(
            SAVE_MENU,
            number,
            menu.greeting,
            menu.prompt,
            data["options"],
            menu.time_zone,
            data["hours"],
            menu.max_wait_seconds,
        )

    async def delete_menu(self, number: str) -> bool:
        return await self._pool.fetchval(DELETE_MENU, number) is not None

    async def call_arrived(self, call_sid: str, from_number: str, to_number: str, status: str) -> None:
        await self._pool.execute(CALL_ARRIVED, call_sid, from_number, to_number, status, STATUS_RANKS.get(status, 0))

    async def call_enqueued(self, call_sid: str, queue_name: str | None) -> None:
        await self._pool.execute(CALL_ENQUEUED, call_sid, queue_name)

    async def open_conversation_of_caller(self, phone: str) -> OpenConversation | None:
        row = await self._pool.fetchrow(OPEN_CONVERSATION_OF_CALLER, phone)
        return None if row is None else OpenConversation(row["queue_name"], row["agent_id"])

    async def call(self, call_sid: str) -> CallState | None:
        row = await self._pool.fetchrow(CALL_OF_SID, call_sid)
        if row is None:
            return None
        return _call_state(row)

    async def call_connected(self, call_sid: str, agent_id: uuid.UUID) -> None:
        await self._pool.execute(CALL_CONNECTED, call_sid, agent_id)

    async def call_of_agent(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> str | None:
        """The CallSid of the call the agent is on in the conversation; None when it is on none there."""
        sid: str | None = await self._pool.fetchval(CALL_OF_AGENT, conversation_id, agent_id)
        return sid

    async def call_handed_off(self, call_sid: str, agent_id: uuid.UUID, queue_name: str) -> bool:
        """The call waits in the queue again, the agent's no more; False when it was not the agent's call."""
        return await self._pool.fetchval(CALL_HANDED_OFF, call_sid, agent_id, queue_name) is not None

    async def call_status(self, call_sid: str, status: str, duration: int | None) -> bool:
        """Move the call forward to `status`; True when this made it abandoned (the first final status of a
        caller still waiting in a queue, who asked for no callback)."""
        rank = STATUS_RANKS.get(status, 0)
        if rank < FINAL_RANK:
            return bool(await self._pool.fetchval(CALL_STATUS, call_sid, status, rank, duration))
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(DEPARTURE_LOCK, call_sid)
            return bool(await connection.fetchval(CALL_STATUS, call_sid, status, rank, duration))

    async def callback_requested(self, call_sid: str) -> CallState | None:
        """The waiting caller asked to be called back: the call, unless it was connected or ended already."""
        row = await self._pool.fetchrow(CALLBACK_REQUESTED, call_sid)
        return None if row is None else _call_state(row)

    async def callback_placed(self, call_sid: str, placed_sid: str, agent_id: uuid.UUID) -> bool:
        """The callback of `call_sid` was placed for `agent_id` as the call `placed_sid`; False when it had been
        already."""
        return await self._pool.fetchval(CALLBACK_PLACED, call_sid, agent_id, placed_sid) is not None

    async def placed_call_seen(self, call_sid: str) -> None:
        await self._pool.execute(PLACED_CALL_SEEN, call_sid)

    async def call_left_queue(self, call_sid: str) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(DEPARTURE_LOCK, call_sid)
            await connection.execute(CALL_LEFT_QUEUE, call_sid)

    async def voicemail_received(self, call_sid: str, recording_sid: str, duration: int | None) -> None:
        await self._pool.execute(VOICEMAIL_RECEIVED, call_sid, recording_sid, duration)

    async def client_phones(self, client_id: uuid.UUID) -> list[str] | None:
        phones: list[str] | None = await self._pool.fetchval(PHONES_OF_CLIENT, client_id)
        return phones

    async def first_number(self) -> str | None:
        number: str | None = await self._pool.fetchval(FIRST_NUMBER)
        return number

    async def call_placed(
        self,
        interaction_id: uuid.UUID,
        call_sid: str,
        client_id: uuid.UUID,
        *,
        ours: str,
        theirs: str,
        agent_id: uuid.UUID,
    ) -> None:
        body = f"Call placed by an agent to {theirs}"
        await self._pool.execute(CALL_PLACED, interaction_id, call_sid, client_id, ours, theirs, body, agent_id)

    async def endpoint(self, agent_id: uuid.UUID) -> VoiceEndpoint | None:
        row = await self._pool.fetchrow(ENDPOINT_OF_AGENT, agent_id)
        return None if row is None else VoiceEndpoint(kind=row["kind"], address=row["address"])

    async def save_endpoint(self, agent_id: uuid.UUID, endpoint: VoiceEndpoint) -> bool:
        saved = await self._pool.fetchval(SAVE_ENDPOINT, agent_id, endpoint.kind, endpoint.address)
        return saved is not None
