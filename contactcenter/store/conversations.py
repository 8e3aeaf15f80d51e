"""Interactions and the conversations they belong to: stored once, attached, assigned, closed.

The hot paths (recording an inbound interaction, reading one for an offer, assigning and closing) go through
`batching.Batcher`: calls that meet under load share one statement. A batch that fails runs again call by
call, so one bad call fails alone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from contactcenter.batching import Batcher
from contactcenter.errors import NotFound
from contactcenter.identities import Identity
from contactcenter.store import InteractionInContext, OpenConversation, RecordedInteraction
from contactcenter.store.cards import CARD_OF_INTERACTION, TIMELINE_LIMIT, TIMELINE_PAGE_MAX
from schema import Channel, Direction, Interaction
from schema.interactions import SENDER_KINDS_BEFORE_ISSUE_14

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Each batched statement below has a twin for a batch of one — the usual case below saturation. PostgreSQL
# cannot tell how long an array parameter is, so a statement taking arrays never finds its generic plan cheap
# enough and is planned anew on every call, which costs more than its execution (docs/performance.md, "Figures
# behind choices in the code"); the twin over plain values is planned once per connection.
RECORD_INBOUND = "SELECT * FROM cc_record_inbound($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
# Many recordings in one statement (one transaction), in the order given: callers sort by identity, so two
# routers take the per-identity advisory locks in the same order and never wait on each other in a circle.
_RECORD_INBOUND_MANY = """
SELECT r.* FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[],
                       $8::text[], $9::text[], $10::text[], $11::timestamptz[]) WITH ORDINALITY
    AS a(id, channel, direction, provider_id, kind, value, verified, from_address, to_address, body, received_at, n)
CROSS JOIN LATERAL cc_record_inbound(a.id, a.channel, a.direction, a.provider_id, a.kind, a.value, a.verified,
                                     a.from_address, a.to_address, a.body, a.received_at{timeline_limit}) r
ORDER BY a.n
"""
RECORD_INBOUND_MANY = _RECORD_INBOUND_MANY.format(timeline_limit=", $12")
# The same without the card (the eleven-argument function, migration 002): for a contact that will most likely
# wait in its queue, whose offer reads the card when an agent is free for it.
RECORD_INBOUND_BARE = "SELECT * FROM cc_record_inbound($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
RECORD_INBOUND_BARE_MANY = _RECORD_INBOUND_MANY.format(timeline_limit="")
# An agent's reply stored with its event in the same statement: `message.sent`, or for a reply the provider did not
# take `message.failed` (on the timeline, its body says so; the channel wrote its own failure event).
_STORE_REPLY = """
WITH r AS (
    INSERT INTO interactions (id, channel, direction, provider_id, client_id, conversation_id,
                              from_address, to_address, from_verified, body, received_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    RETURNING id, channel, client_id, conversation_id, received_at
)
INSERT INTO events (type, subject, partition_key, data)
SELECT '{event}', r.id, 'conversation:' || r.conversation_id,
       jsonb_build_object('interaction_id', r.id, 'conversation_id', r.conversation_id, 'client_id', r.client_id,
                          'channel', r.channel, 'agent_id', $12::uuid, {fields})
FROM r
"""
INSERT_INTERACTION = _STORE_REPLY.format(event="message.sent", fields="'sent_at', r.received_at")
INSERT_UNSENT = _STORE_REPLY.format(event="message.failed", fields="'reason', $13::text, 'failed_at', r.received_at")
# An interaction with what an offer needs beside it: the queue's name and the client's whole card.
_IN_CONTEXT = f"""
SELECT x.id, x.channel, x.direction, x.provider_id, x.from_address, x.to_address, x.from_verified, x.body,
       x.received_at, x.client_id, coalesce(q.name, '') AS queue_name, {CARD_OF_INTERACTION} AS card
FROM interactions x
LEFT JOIN conversations v ON v.id = x.conversation_id
LEFT JOIN queues q ON q.id = v.queue_id
"""
INTERACTION_IN_CONTEXT = _IN_CONTEXT + "WHERE x.id = $1"
# The interaction alone (no card): what a channel needs when an agent accepts it (a call to connect).
INTERACTION_ALONE = """
SELECT x.id, x.channel, x.direction, x.provider_id, x.from_address, x.to_address, x.from_verified, x.body,
       x.received_at, '' AS queue_name, '' AS card
FROM interactions x WHERE x.id = $1
"""
INTERACTIONS_IN_CONTEXT = _IN_CONTEXT + "WHERE x.id = ANY($1::uuid[])"
# Where a reply goes: back to whoever last wrote in, from the address they wrote to.
_ROUTE = """
SELECT v.channel, v.client_id, x.from_address, x.to_address, x.provider_id
FROM conversations v
JOIN LATERAL (SELECT from_address, to_address, provider_id FROM interactions
              WHERE conversation_id = v.id AND direction = 'inbound'
              ORDER BY received_at DESC LIMIT 1) x ON true
WHERE v.id = $1 AND v.agent_id = $2 AND {condition}
"""
REPLY_ROUTE = _ROUTE.format(condition="v.state = 'open'")
# The client's address in a conversation the agent holds or held, when it is on one of the channels asked for
# (those with a live presence): one primary-key lookup, and its latest inbound interaction by the index.
PARTY_ROUTE = _ROUTE.format(condition="v.channel = ANY($3::text[])")
# The agents holding a customer's open conversation on a channel, found by one of the customer's identities.
HOLDERS = """
SELECT v.id, v.agent_id FROM identities i
JOIN conversations v ON v.client_id = i.client_id AND v.channel = $3 AND v.state = 'open'
WHERE i.kind = $1 AND i.value = $2 AND v.agent_id IS NOT NULL
"""
# The cards holding any of the identities given (kind, value pairs), but the customer's own.
# The cards (as they answer: merged-away ones as their survivor) holding the identities, but the card $3.
CARDS_HOLDING = """
SELECT DISTINCT h.client_id, h.kind FROM (
    SELECT cc_card_root(i.client_id) AS client_id, i.kind FROM identities i
    JOIN unnest($1::text[], $2::text[]) AS c(kind, value) ON i.kind = c.kind AND i.value = c.value) h
WHERE h.client_id IS DISTINCT FROM $3
"""
CARD_OF = "SELECT cc_card_root(client_id) FROM identities WHERE kind = $1 AND value = $2"
# Every open conversation that has a queue, with the interaction that opened it: what live state holds.
OPEN_IN_QUEUES = """
SELECT v.id, v.queue_id, v.agent_id, (extract(epoch FROM v.opened_at) * 1000)::bigint AS opened_ms,
       (SELECT x.id FROM interactions x WHERE x.conversation_id = v.id AND x.direction = 'inbound'
        ORDER BY x.received_at LIMIT 1) AS interaction_id
FROM conversations v
WHERE v.state = 'open' AND v.queue_id IS NOT NULL
ORDER BY v.opened_at
"""
# Assign and close answer the (conversation, agent) pairs they changed, each with its channel (what the desktop's
# accept and complete do next depends on it: no second read to learn it); a pair missing from the answer was not
# open (or, for close, not this agent's).
ASSIGN_MANY = """
UPDATE conversations v SET agent_id = u.agent_id
FROM unnest($1::uuid[], $2::uuid[]) AS u(id, agent_id)
WHERE v.id = u.id AND v.state = 'open'
RETURNING v.id, v.agent_id, v.channel
"""
ASSIGN = "UPDATE conversations SET agent_id = $2 WHERE id = $1 AND state = 'open' RETURNING id, agent_id, channel"
# Closing writes conversation.closed in the same statement (the outbox, migration 010). The interaction's own
# events (answered, completed) come from live state, as its offer's do, so that they keep their order.
# Closing again what the same agent closed changes nothing, writes no second event, and succeeds: when the
# answer of a committed close is lost (a connection reset), the desktop's retry must still free the agent in
# live state. (The row lock makes a concurrent close see the first one's result: only one writes the event.) The
# lock is the one the UPDATE takes anyway, NO KEY UPDATE: FOR UPDATE would also wait for, and block, the `KEY SHARE`
# that each interaction a router records into the conversation holds until its batch commits — closes and recording
# batches took turns, and in opposite orders deadlocked (tests/contract/test_store_locks.py).
_CLOSE = """
WITH target AS (
    SELECT v.id, v.state = 'open' AS was_open
    FROM conversations v JOIN {pairs} AS u(id, agent_id) ON v.id = u.id AND v.agent_id = u.agent_id
    FOR NO KEY UPDATE OF v
), changed AS (
    UPDATE conversations v SET state = 'closed', closed_at = coalesce(v.closed_at, now())
    FROM target t
    WHERE v.id = t.id
    RETURNING v.id, v.agent_id, v.client_id, v.channel, v.closed_at, v.queue_id, t.was_open
), closed AS (
    INSERT INTO events (type, subject, partition_key, data)
    SELECT 'conversation.closed', c.id, 'conversation:' || c.id,
           jsonb_build_object('conversation_id', c.id, 'client_id', c.client_id, 'channel', c.channel,
                              'agent_id', c.agent_id, 'closed_at', c.closed_at, 'reason', 'completed')
    FROM changed c
    WHERE c.was_open
)
SELECT c.id, c.agent_id, c.channel, q.wrap_up_seconds FROM changed c LEFT JOIN queues q ON q.id = c.queue_id
"""
CLOSE_MANY = _CLOSE.format(pairs="unnest($1::uuid[], $2::uuid[])")
CLOSE = _CLOSE.format(pairs="(VALUES ($1::uuid, $2::uuid))")
REHOME_INBOUND = "SELECT * FROM cc_rehome_inbound($1)"
# The interactions table does not keep the sender's kind: rendered from the channel, by the schema's one table.
_SENDER_KIND_OF_X = (
    "CASE x.channel "
    + " ".join(f"WHEN '{channel}' THEN '{kind}'" for channel, kind in SENDER_KINDS_BEFORE_ISSUE_14.items())
    + " END"
)
# The conversations an agent holds (accepted, not completed), oldest first, as the JSON array `hello` carries
# (`schema.desktop.HeldConversation`): rendered by the database like the card it holds, so a desktop that
# connects costs one statement (index: migration 008) and nothing is parsed here. Each with its latest
# interactions, oldest first, in the shape of `schema.Interaction`.
HELD_BY_AGENT = f"""
SELECT coalesce(json_agg(json_build_object(
           'id', v.id, 'channel', v.channel, 'queue', coalesce(q.name, ''), 'opened_at', v.opened_at,
           'card', cc_card(v.client_id, {TIMELINE_LIMIT})::json,
           'interactions', (
               SELECT coalesce(json_agg(json_build_object(
                          'id', x.id, 'channel', x.channel, 'direction', x.direction, 'provider_id', x.provider_id,
                          'from_address', x.from_address, 'sender_kind', {_SENDER_KIND_OF_X},
                          'to_address', x.to_address, 'from_verified', x.from_verified, 'thread_address', '',
                          'body', x.body,
                          'received_at', x.received_at)
                      ORDER BY x.received_at, x.id), '[]'::json)
               FROM (SELECT * FROM interactions WHERE conversation_id = v.id
                     ORDER BY received_at DESC LIMIT {TIMELINE_PAGE_MAX}) x))
       ORDER BY v.opened_at, v.id), '[]'::json)::text
FROM conversations v
LEFT JOIN queues q ON q.id = v.queue_id
WHERE v.agent_id = $1 AND v.state = 'open'
"""
# Statements of one kind in flight at once; the pool's other connections stay free for the rest.
LANES = 1


@dataclass(frozen=True)
class ReplyRoute:
    conversation_id: uuid.UUID
    client_id: uuid.UUID
    channel: Channel
    client_address: str
    our_address: str
    # The provider's id of the customer's latest message: what a threading channel's reply answers.
    last_inbound_id: str = ""


@dataclass(frozen=True)
class Closed:
    """A conversation an agent completed: its channel, and its queue's wrap-up time (None: the queue sets none)."""

    channel: Channel
    wrap_up_seconds: int | None


@dataclass(frozen=True)
class Rehomed:
    """Where an interaction found in a closed conversation went: the client's open conversation (with its agent,
    if one has it) or a new one waiting in `queue_id` (None when no queue serves the channel)."""

    conversation_id: uuid.UUID
    queue_id: uuid.UUID | None
    agent_id: uuid.UUID | None


Assignment = tuple[uuid.UUID, uuid.UUID]  # conversation, agent


class Conversations:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._recording: Batcher[tuple[Interaction, Identity], RecordedInteraction] = Batcher(
            _each_alone_on_failure(self._record_many), lanes=LANES
        )
        self._recording_bare: Batcher[tuple[Interaction, Identity], RecordedInteraction] = Batcher(
            _each_alone_on_failure(self._record_many_bare), lanes=LANES
        )
        self._reading: Batcher[uuid.UUID, InteractionInContext] = Batcher(self._read_many, lanes=LANES)
        self._assigning: Batcher[Assignment, Channel] = Batcher(_each_alone_on_failure(self._assign_many), lanes=LANES)
        self._closing: Batcher[Assignment, Closed] = Batcher(_each_alone_on_failure(self._close_many), lanes=LANES)

    async def record_inbound(
        self, interaction: Interaction, sender: Identity, *, with_card: bool = True
    ) -> RecordedInteraction:
        """Resolve the sender, store the interaction once and attach it to the client's open conversation on
        its channel — one transaction, one round trip (`cc_record_inbound`, migrations 002 and 005). With
        `with_card`, what an offer of it shows is read in the same transaction (`offer_context`)."""
        recording = self._recording if with_card else self._recording_bare
        return await recording.call((interaction, sender))

    async def _record_many(self, calls: list[tuple[Interaction, Identity]]) -> list[RecordedInteraction]:
        return await self._record_with(RECORD_INBOUND, RECORD_INBOUND_MANY, calls, (TIMELINE_LIMIT,))

    async def _record_many_bare(self, calls: list[tuple[Interaction, Identity]]) -> list[RecordedInteraction]:
        return await self._record_with(RECORD_INBOUND_BARE, RECORD_INBOUND_BARE_MANY, calls, ())

    async def _record_with(
        self, one: str, many: str, calls: list[tuple[Interaction, Identity]], after_columns: tuple[int, ...]
    ) -> list[RecordedInteraction]:
        order = sorted(range(len(calls)), key=lambda n: (calls[n][1].kind, calls[n][1].value))
        ordered = [calls[n] for n in order]
        columns = (
            [i.id for i, _ in ordered],
            [str(i.channel) for i, _ in ordered],
            [str(i.direction) for i, _ in ordered],
            [i.provider_id for i, _ in ordered],
            [str(sender.kind) for _, sender in ordered],
            [sender.value for _, sender in ordered],
            [i.from_verified for i, _ in ordered],
            [i.from_address for i, _ in ordered],
            [i.to_address for i, _ in ordered],
            [i.body for i, _ in ordered],
            [i.received_at for i, _ in ordered],
        )
        if len(calls) == 1:
            rows = await self._pool.fetch(one, *(column[0] for column in columns), *after_columns)
        else:
            rows = await self._pool.fetch(many, *columns, *after_columns)
        assert len(rows) == len(calls), "cc_record_inbound always answers one row"
        recorded = {
            n: RecordedInteraction(
                interaction_id=row["o_interaction_id"],
                client_id=row["o_client_id"],
                conversation_id=row["o_conversation_id"],
                queue_id=row["o_queue_id"],
                agent_id=row["o_agent_id"],
                conversation_open=row["o_open"],
                new=row["o_new"],
                queue_name=row.get("o_queue_name"),
                card_json=row.get("o_card"),
            )
            for n, row in zip(order, rows, strict=True)
        }
        return [recorded[n] for n in range(len(calls))]

    async def rehome_inbound(self, interaction_id: uuid.UUID) -> Rehomed | None:
        """Move an inbound interaction whose conversation closed before any agent took it up into the client's
        open conversation on its channel, or a new one (`cc_rehome_inbound`, migration 006); None when its
        conversation is open (nothing to move)."""
        row = await self._pool.fetchrow(REHOME_INBOUND, interaction_id)
        if row is None or not row["o_moved"]:
            return None
        return Rehomed(row["o_conversation_id"], row["o_queue_id"], row["o_agent_id"])

    async def interaction(self, interaction_id: uuid.UUID) -> InteractionInContext:
        """An interaction with its queue's name and the client's whole card: what an offer shows."""
        return await self._reading.call(interaction_id)

    async def interaction_alone(self, interaction_id: uuid.UUID) -> Interaction:
        row = await self._pool.fetchrow(INTERACTION_ALONE, interaction_id)
        if row is None:
            raise NotFound(f"no interaction {interaction_id}", field="interaction_id")
        return _in_context(row).interaction

    async def _read_many(self, interaction_ids: list[uuid.UUID]) -> list[InteractionInContext | NotFound]:
        distinct = list(set(interaction_ids))
        if len(distinct) == 1:
            rows = await self._pool.fetch(INTERACTION_IN_CONTEXT, distinct[0])
        else:
            rows = await self._pool.fetch(INTERACTIONS_IN_CONTEXT, distinct)
        found = {row["id"]: row for row in rows}
        return [
            _in_context(found[n]) if n in found else NotFound(f"no interaction {n}", field="interaction_id")
            for n in interaction_ids
        ]

    async def assign(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> Channel:
        """Give the open conversation to the agent; answer its channel."""
        return await self._assigning.call((conversation_id, agent_id))

    async def _assign_many(self, calls: list[Assignment]) -> list[NotFound | Channel]:
        rows = await self._for_pairs(ASSIGN, ASSIGN_MANY, calls)
        channels = {(row["id"], row["agent_id"]): Channel(row["channel"]) for row in rows}
        return [
            channels[call]
            if call in channels
            else NotFound(f"conversation {call[0]} is not open", field="conversation_id")
            for call in calls
        ]

    async def close(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> Closed:
        """Close the agent's conversation; answer its channel and its queue's wrap-up time."""
        return await self._closing.call((conversation_id, agent_id))

    async def _close_many(self, calls: list[Assignment]) -> list[NotFound | Closed]:
        rows = await self._for_pairs(CLOSE, CLOSE_MANY, calls)
        closed = {(row["id"], row["agent_id"]): Closed(Channel(row["channel"]), row["wrap_up_seconds"]) for row in rows}
        return [
            closed[call]
            if call in closed
            else NotFound(f"conversation {call[0]} is not open and assigned to you", field="conversation_id")
            for call in calls
        ]

    async def _for_pairs(self, one: str, many: str, calls: list[Assignment]) -> list[asyncpg.Record]:
        if len(calls) == 1:
            return await self._pool.fetch(one, *calls[0])
        return await self._pool.fetch(many, [c for c, _ in calls], [a for _, a in calls])

    async def reply_route(self, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> ReplyRoute:
        row = await self._pool.fetchrow(REPLY_ROUTE, conversation_id, agent_id)
        if row is None:
            raise NotFound(f"conversation {conversation_id} is not open and assigned to you", field="conversation_id")
        return _route(conversation_id, row)

    async def party_route(
        self, conversation_id: uuid.UUID, agent_id: uuid.UUID, channels: list[str]
    ) -> ReplyRoute | None:
        """The conversation's route when the agent holds (or held) it and it is on one of `channels`."""
        row = await self._pool.fetchrow(PARTY_ROUTE, conversation_id, agent_id, channels)
        return None if row is None else _route(conversation_id, row)

    async def holders(self, kind: str, value: str, channel: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(conversation, agent) of each open conversation of the customer on `channel` that an agent holds."""
        rows = await self._pool.fetch(HOLDERS, kind, value, channel)
        return [(row["id"], row["agent_id"]) for row in rows]

    async def card_of(self, kind: str, value: str) -> uuid.UUID | None:
        """The card the identity answers as (the survivor, when its card was merged), or None."""
        card: uuid.UUID | None = await self._pool.fetchval(CARD_OF, kind, value)
        return card

    async def cards_holding(
        self, identities: list[tuple[str, str]], but: uuid.UUID | None
    ) -> list[tuple[uuid.UUID, str]]:
        """(card, kind) of each card holding one of `identities`, as the cards answer, but the card `but`."""
        kinds, values = [kind for kind, _ in identities], [value for _, value in identities]
        rows = await self._pool.fetch(CARDS_HOLDING, kinds, values, but)
        return [(row["client_id"], row["kind"]) for row in rows]

    async def record_outbound(self, route: ReplyRoute, interaction: Interaction, agent_id: uuid.UUID) -> None:
        await self._pool.execute(INSERT_INTERACTION, *_outbound_row(route, interaction), agent_id)

    async def record_unsent(
        self, route: ReplyRoute, interaction: Interaction, agent_id: uuid.UUID, reason: str
    ) -> None:
        """An agent's reply that did not leave, on the timeline (its body says so), with `message.failed` instead
        of `message.sent`: the event says so by its type, naming the entry and why."""
        await self._pool.execute(INSERT_UNSENT, *_outbound_row(route, interaction), agent_id, reason)

    async def held_by(self, agent_id: uuid.UUID) -> str:
        """The conversations the agent holds, with their cards and interactions, as a JSON array (`[]` for
        none): what a desktop is told when it connects, so that an agent coming back finds its work."""
        text: str = await self._pool.fetchval(HELD_BY_AGENT, agent_id)
        return text

    async def open_in_queues(self) -> list[OpenConversation]:
        rows = await self._pool.fetch(OPEN_IN_QUEUES)
        return [
            OpenConversation(row["id"], row["queue_id"], row["agent_id"], row["interaction_id"], row["opened_ms"])
            for row in rows
            if row["interaction_id"] is not None
        ]


def _outbound_row(route: ReplyRoute, interaction: Interaction) -> tuple[object, ...]:
    return (
        interaction.id,
        str(interaction.channel),
        str(interaction.direction),
        interaction.provider_id,
        route.client_id,
        route.conversation_id,
        interaction.from_address,
        interaction.to_address,
        interaction.from_verified,
        interaction.body,
        interaction.received_at,
    )


def _route(conversation_id: uuid.UUID, row: asyncpg.Record) -> ReplyRoute:
    return ReplyRoute(
        conversation_id,
        row["client_id"],
        Channel(row["channel"]),
        row["from_address"],
        row["to_address"],
        row["provider_id"],
    )


def _in_context(row: asyncpg.Record) -> InteractionInContext:
    channel = Channel(row["channel"])
    interaction = Interaction(
        id=row["id"],
        channel=channel,
        direction=Direction(row["direction"]),
        provider_id=row["provider_id"],
        from_address=row["from_address"],
        # Not kept in the interactions table (yet): what the channel's sender is.
        sender_kind=SENDER_KINDS_BEFORE_ISSUE_14[channel],
        to_address=row["to_address"],
        from_verified=row["from_verified"],
        body=row["body"],
        received_at=row["received_at"],
    )
    return InteractionInContext(interaction, row["queue_name"], row["card"])


def _each_alone_on_failure(
    run_many: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
) -> Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]:
    """A statement for many calls fails as a whole (a deadlock, one bad row): run each call alone then, so
    only the call that fails on its own fails."""

    async def run(calls: list[T]) -> Sequence[R | BaseException]:
        try:
            return await run_many(calls)
        except asyncpg.PostgresError as exc:
            if len(calls) == 1:
                raise
            log.warning("a batch of %d failed (%s); running each alone", len(calls), type(exc).__name__)
        results: list[R | BaseException] = []
        for call in calls:
            try:
                results.extend(await run_many([call]))
            except Exception as exc:
                results.append(exc)
        return results

    return run
