"""PostgreSQL: migrations apply once even when several processes start together, and the hot query of
recording an interaction is idempotent and safe under concurrent routers."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from importlib import resources

import asyncpg
import pytest
from pydantic import TypeAdapter

from contactcenter.errors import NotFound
from contactcenter.identities import Identity
from contactcenter.store import open_pool
from contactcenter.store.cards import Cards
from contactcenter.store.conversations import Closed, Conversations
from contactcenter.store.migrate import migrate
from contactcenter.store.privacy import Privacy
from schema import Channel, ClientCard, IdentityKind, Interaction
from schema.desktop import HeldConversation

_HELD = TypeAdapter(list[HeldConversation])


async def test_processes_starting_together_apply_each_migration_once(database_url: str, database_schema: str) -> None:
    pools = [await open_pool(database_url, schema=database_schema, min_size=1, max_size=2) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(pool) for pool in pools))
        assert sorted(len(names) for names in applied)[:2] == [0, 0], "only one process applies them"
        files = sorted(f.name for f in (resources.files("contactcenter.store") / "migrations").iterdir())
        migrations = [name for name in files if name.endswith(".sql")]
        assert max(applied, key=len) == migrations
        versions = await pools[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        # By the files' numbers, not a count: a number may be free while a parallel branch holds it.
        assert [row["version"] for row in versions] == [int(name.split("_", 1)[0]) for name in migrations]
        assert await migrate(pools[0]) == []
    finally:
        for pool in pools:
            await pool.close()


def _sms(sender: str, sid: str) -> Interaction:
    return Interaction(
        channel=Channel.SMS,
        provider_id=sid,
        from_address=sender,
        sender_kind=IdentityKind.PHONE,
        from_verified=True,
        received_at=datetime.now(UTC),
    )


async def test_concurrent_first_contacts_from_one_number_make_one_client_and_one_conversation(
    pool: asyncpg.Pool,
) -> None:
    conversations = Conversations(pool)
    sender = Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    sids = [f"SM{n:032d}" for n in range(20)]
    recorded = await asyncio.gather(
        *(conversations.record_inbound(_sms("+14155550134", sid), sender) for sid in sids + sids)
    )
    assert len({r.client_id for r in recorded}) == 1
    assert len({r.conversation_id for r in recorded}) == 1
    assert sum(r.new for r in recorded) == len(sids), "each message is new exactly once"
    assert await pool.fetchval("SELECT count(*) FROM interactions") == len(sids)


async def test_an_identity_first_seen_unverified_becomes_verified_when_a_channel_vouches(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    claim = Identity(IdentityKind.PHONE, "+14155550134", verified=False)
    first = await conversations.record_inbound(_sms("+14155550134", "SM1"), claim)
    second = await conversations.record_inbound(
        _sms("+14155550134", "SM2"), Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    )
    assert first.client_id == second.client_id
    assert await pool.fetchval("SELECT verified FROM identities") is True


async def test_two_routers_recording_the_same_people_at_once_neither_deadlock_nor_duplicate(
    pool: asyncpg.Pool,
) -> None:
    """Under load, recordings share one statement (one transaction): two routers whose batches hold the
    same people in different orders must not wait on each other in a circle."""
    routers = [Conversations(pool), Conversations(pool)]
    numbers = [f"+1415555{n:04d}" for n in range(12)]
    messages = [(number, f"SM{number[1:]}{k}") for number in numbers for k in range(3)]
    calls = []
    for n, (number, sid) in enumerate(messages + messages[::-1]):  # every message twice: a retry
        sender = Identity(IdentityKind.PHONE, number, verified=True)
        calls.append(routers[n % 2].record_inbound(_sms(number, sid), sender))
    recorded = await asyncio.gather(*calls)
    assert sum(r.new for r in recorded) == len(messages)
    assert await pool.fetchval("SELECT count(*) FROM interactions") == len(messages)
    assert await pool.fetchval("SELECT count(*) FROM clients") == len(numbers)
    assert await pool.fetchval("SELECT count(*) FROM conversations WHERE state = 'open'") == len(numbers)
    by_number: dict[str, set[object]] = {}
    for (number, _), r in zip(messages + messages[::-1], recorded, strict=True):
        by_number.setdefault(number, set()).add(r.conversation_id)
    assert all(len(conversation) == 1 for conversation in by_number.values())


async def test_a_recording_that_fails_fails_alone_in_its_batch(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    sender = Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    broken = _sms("+14155550134", "SMbroken").model_copy(update={"body": "a NUL \x00 PostgreSQL refuses"})
    calls = [conversations.record_inbound(_sms("+14155550134", f"SM{n}"), sender) for n in range(5)]
    calls.insert(3, conversations.record_inbound(broken, sender))
    results = await asyncio.gather(*calls, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(results[3], asyncpg.PostgresError)
    assert await pool.fetchval("SELECT count(*) FROM interactions") == 5


async def test_assigning_and_closing_together_answer_each_conversation_alone(pool: asyncpg.Pool) -> None:
    conversations = Conversations(pool)
    agents = [
        await pool.fetchval(
            "INSERT INTO agents (id, name, token_hash) VALUES (gen_random_uuid(), $1, $2) RETURNING id",
            f"a{n}",
            bytes([n]),
        )
        for n in range(6)
    ]
    recorded = await asyncio.gather(
        *(
            conversations.record_inbound(
                _sms(f"+1415555{n:04d}", f"SM{n}"), Identity(IdentityKind.PHONE, f"+1415555{n:04d}", verified=True)
            )
            for n in range(6)
        )
    )
    await asyncio.gather(*(conversations.assign(r.conversation_id, a) for r, a in zip(recorded, agents, strict=True)))
    results = await asyncio.gather(
        *(conversations.close(r.conversation_id, a) for r, a in zip(recorded, agents[1:] + agents[:1], strict=True)),
        conversations.close(recorded[0].conversation_id, agents[0]),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NotFound"] * 6 + ["Closed"]
    assert results[-1] == Closed(Channel.SMS, None)  # its channel, and no wrap-up time set by its queue
    assert await pool.fetchval("SELECT count(*) FROM conversations WHERE state = 'closed'") == 1
    with pytest.raises(NotFound):
        await conversations.assign(recorded[0].conversation_id, agents[1])


async def test_a_contact_left_in_a_closed_conversation_moves_to_the_client_s_open_one_or_a_new_one(
    pool: asyncpg.Pool,
) -> None:
    conversations = Conversations(pool)
    agent = await pool.fetchval(
        "INSERT INTO agents (id, name, token_hash) VALUES (gen_random_uuid(), 'a', '\\x00') RETURNING id"
    )
    queue = await pool.fetchval(
        "INSERT INTO queues (id, name, channels) VALUES (gen_random_uuid(), 'q', '{sms}') RETURNING id"
    )
    sender = Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    first = await conversations.record_inbound(_sms("+14155550134", "SM1"), sender)
    raced = await conversations.record_inbound(_sms("+14155550134", "SM2"), sender)
    assert raced.conversation_id == first.conversation_id
    assert await conversations.rehome_inbound(raced.interaction_id) is None, "its conversation is open"

    await conversations.assign(first.conversation_id, agent)
    await conversations.close(first.conversation_id, agent)
    moved = await conversations.rehome_inbound(raced.interaction_id)
    assert moved is not None and moved.conversation_id != first.conversation_id
    assert (moved.queue_id, moved.agent_id) == (queue, None)
    assert await conversations.rehome_inbound(raced.interaction_id) is None, "moved once"
    now_in = await pool.fetchval("SELECT conversation_id FROM interactions WHERE id = $1", raced.interaction_id)
    assert now_in == moved.conversation_id
    first_stays = await pool.fetchval("SELECT conversation_id FROM interactions WHERE id = $1", first.interaction_id)
    assert first_stays == first.conversation_id

    # The client wrote again meanwhile, and an agent has that conversation: the contact joins it.
    await conversations.assign(moved.conversation_id, agent)
    await conversations.close(moved.conversation_id, agent)
    later = await conversations.record_inbound(_sms("+14155550134", "SM3"), sender)
    await conversations.assign(later.conversation_id, agent)
    joined = await conversations.rehome_inbound(raced.interaction_id)
    assert joined is not None
    assert (joined.conversation_id, joined.agent_id) == (later.conversation_id, agent)
    open_ones = "SELECT count(*) FROM conversations WHERE state = 'open'"
    assert await pool.fetchval(open_ones) == 1


async def test_a_contact_left_on_an_erased_card_is_never_moved_into_an_open_conversation(pool: asyncpg.Pool) -> None:
    """The router recorded a contact just before the card was erased (whose withdrawal closes its
    conversation): moving it would open a conversation on the erased card and offer an emptied contact to an
    agent. It stays, closed."""
    conversations = Conversations(pool)
    await pool.execute("INSERT INTO queues (id, name, channels) VALUES (gen_random_uuid(), 'q', '{sms}')")
    sender = Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    recorded = await conversations.record_inbound(_sms("+14155550134", "SM1"), sender)
    await Privacy(pool).erase(recorded.client_id, actor="admin")
    # What the erasure's withdrawal does next, out of the transaction: the waiting contact's conversation closed.
    await pool.execute("UPDATE conversations SET state = 'closed' WHERE id = $1", recorded.conversation_id)

    assert await conversations.rehome_inbound(recorded.interaction_id) is None
    assert await pool.fetchval("SELECT count(*) FROM conversations WHERE state = 'open'") == 0
    now_in = await pool.fetchval("SELECT conversation_id FROM interactions WHERE id = $1", recorded.interaction_id)
    assert now_in == recorded.conversation_id


async def test_a_recording_that_waits_for_an_agent_answers_the_card_an_offer_shows(pool: asyncpg.Pool) -> None:
    """The offer made at once shows what the recording read: the same card the card endpoints read, the
    interaction just recorded at its head. Nothing when no offer can follow (a retry, an agent's conversation)."""
    conversations, cards = Conversations(pool), Cards(pool)
    sender = Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    unqueued = await conversations.record_inbound(_sms("+14155550134", "SM0"), sender)
    assert (unqueued.queue_id, unqueued.queue_name, unqueued.card_json) == (None, None, None), "no queue serves SMS yet"
    await pool.execute("UPDATE conversations SET state = 'closed'")
    await pool.execute("INSERT INTO queues (id, name, channels) VALUES (gen_random_uuid(), 'service', '{sms}')")

    first = await conversations.record_inbound(_sms("+14155550134", "SM1"), sender)
    assert first.queue_name == "service" and first.card_json is not None
    context = first.offer_context(_sms("+14155550134", "SM1"))
    assert context is not None and context.queue_name == "service"
    card = ClientCard.model_validate_json(context.card_json)
    assert [entry.id for entry in card.timeline][:2] == [first.interaction_id, unqueued.interaction_id]
    assert context.card_json == await cards.by_id(first.client_id)

    retry = await conversations.record_inbound(_sms("+14155550134", "SM1"), sender)
    assert not retry.new and retry.card_json is None and retry.offer_context(_sms("+14155550134", "SM1")) is None
    agent = await pool.fetchval(
        "INSERT INTO agents (id, name, token_hash) VALUES (gen_random_uuid(), 'a', '\\x00') RETURNING id"
    )
    await conversations.assign(first.conversation_id, agent)
    held = await conversations.record_inbound(_sms("+14155550134", "SM2"), sender)
    assert held.new and held.agent_id == agent and held.card_json is None


async def test_a_recording_without_its_card_stores_and_attaches_the_same_and_reads_no_card(
    pool: asyncpg.Pool,
) -> None:
    """What a router asks when the contact will most likely wait for an agent: the same recording, alone and
    in a batch, without the queue's name and the card (its offer reads them when an agent is free)."""
    conversations = Conversations(pool)
    await pool.execute("INSERT INTO queues (id, name, channels) VALUES (gen_random_uuid(), 'service', '{sms}')")
    senders = [Identity(IdentityKind.PHONE, f"+1415555013{n}", verified=True) for n in range(3)]
    alone = await conversations.record_inbound(_sms(senders[0].value, "SM0"), senders[0], with_card=False)
    together = await asyncio.gather(
        *(conversations.record_inbound(_sms(s.value, f"SM{n}"), s, with_card=False) for n, s in enumerate(senders))
    )
    for recorded in (alone, *together):
        assert recorded.queue_id is not None and recorded.conversation_open and recorded.agent_id is None
        assert (recorded.queue_name, recorded.card_json) == (None, None)
        assert recorded.offer_context(_sms(senders[0].value, "SM0")) is None
    assert alone.new and not together[0].new and together[0].interaction_id == alone.interaction_id
    assert all(recorded.new for recorded in together[1:])
    stored = await conversations.interaction(together[2].interaction_id)
    assert stored.queue_name == "service" and ClientCard.model_validate_json(stored.card_json).timeline


async def test_the_card_the_database_renders_is_exactly_the_schema_s_card(pool: asyncpg.Pool) -> None:
    """Cards go out as the database wrote them (not parsed and written again): every field the model has, no
    other, and times in UTC."""
    conversations, cards = Conversations(pool), Cards(pool)
    sender = Identity(IdentityKind.PHONE, "+14155550134", verified=True)
    recorded = await conversations.record_inbound(_sms("+14155550134", "SM1"), sender)
    await conversations.record_inbound(_sms("+14155550134", "SM2"), sender)
    text = await cards.by_id(recorded.client_id)
    assert text is not None and text == await cards.by_identity(IdentityKind.PHONE, "+14155550134")
    rendered = json.loads(text)
    modelled = json.loads(ClientCard.model_validate_json(text).model_dump_json())
    assert _shape(rendered) == _shape(modelled) and len(rendered["timeline"]) == 2
    assert rendered["timeline"][0]["occurred_at"].endswith("+00:00")
    assert await cards.by_id(uuid.uuid4()) is None


def _shape(value: object) -> object:
    """The keys of a JSON value, all the way down."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return None


async def test_the_conversations_an_agent_holds_render_as_the_schema_s_hello_carries_them(pool: asyncpg.Pool) -> None:
    """What a desktop is told when it connects, as the database wrote it: each open conversation assigned to the
    agent — not another's, not a closed one — with every field the model has and no other, interactions oldest
    first, and the same card the card endpoints answer."""
    conversations, cards = Conversations(pool), Cards(pool)
    await pool.execute("INSERT INTO queues (id, name, channels) VALUES (gen_random_uuid(), 'service', '{sms}')")
    agent, other = [
        await pool.fetchval(
            "INSERT INTO agents (id, name, token_hash) VALUES (gen_random_uuid(), $1, $2) RETURNING id", name, token
        )
        for name, token in (("a", b"\x00"), ("b", b"\x01"))
    ]
    assert await conversations.held_by(agent) == "[]"

    senders = [Identity(IdentityKind.PHONE, f"+1415555013{n}", verified=True) for n in range(4)]
    recorded = [await conversations.record_inbound(_sms(s.value, f"SM{n}"), s) for n, s in enumerate(senders)]
    later = await conversations.record_inbound(_sms(senders[0].value, "SM9"), senders[0])
    held, closed, others, waiting = recorded
    for conversation, holder in ((held, agent), (closed, agent), (others, other)):
        await conversations.assign(conversation.conversation_id, holder)
    await conversations.close(closed.conversation_id, agent)
    assert waiting.agent_id is None

    text = await conversations.held_by(agent)
    [rendered] = json.loads(text)
    [modelled] = json.loads(_HELD.dump_json(_HELD.validate_json(text)))
    assert _shape(rendered) == _shape(modelled)
    assert (rendered["id"], rendered["channel"], rendered["queue"]) == (str(held.conversation_id), "sms", "service")
    assert [x["id"] for x in rendered["interactions"]] == [str(held.interaction_id), str(later.interaction_id)]
    assert json.loads(await cards.by_id(held.client_id) or "") == rendered["card"]
