"""Merges on the real PostgreSQL: undoing one restores both cards exactly, whatever happened before and after
(randomised histories), and resolution stays one card per identity under concurrent routers."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactcenter.identities import Identity
from contactcenter.store.card_edits import CardEdits, NewIdentity
from contactcenter.store.cards import Cards
from contactcenter.store.conversations import Conversations
from contactcenter.store.merges import Evidence, Merges
from contactcenter.store.proofs import ProvedIdentities
from schema import Channel, IdentityKind, Interaction
from schema.cards import ClientPatch, Profile

NUMBERS = itertools.count(1000)
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class World:
    pool: asyncpg.Pool
    phones: dict[str, str] = field(default_factory=dict)  # card name → its phone
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    clock: int = 0

    async def contact(self, who: str, channel: Channel) -> str:
        """A verified contact from `who`'s phone; its body names it."""
        self.clock += 1
        body = f"{who}-{self.clock}"
        phone = self.phones[who]
        interaction = Interaction(
            channel=channel,
            provider_id=f"P{uuid.uuid4().hex}",
            from_address=phone,
            sender_kind=IdentityKind.PHONE,
            from_verified=True,
            body=body,
            received_at=START + timedelta(seconds=self.clock),
        )
        recorded = await Conversations(self.pool).record_inbound(interaction, Identity(IdentityKind.PHONE, phone, True))
        self.ids.setdefault(who, recorded.client_id)
        return body

    async def card(self, who: str) -> dict[str, Any]:
        text = await Cards(self.pool).by_id(self.ids[who])
        assert text is not None
        card: dict[str, Any] = json.loads(text)
        return card


def _bodies(card: dict[str, Any]) -> list[str]:
    return [entry["body"] for entry in card["timeline"]]


CHANNELS = st.sampled_from([Channel.SMS, Channel.VOICE])
BEFORE = st.lists(st.tuples(st.sampled_from("ab"), CHANNELS), max_size=6)
AFTER = st.lists(
    st.one_of(
        st.tuples(st.just("contact"), st.sampled_from("ab"), CHANNELS),
        st.tuples(st.just("note"), st.sampled_from("ab"), st.just(Channel.SMS)),
        st.tuples(st.just("identity"), st.sampled_from("ab"), st.just(Channel.SMS)),
        st.tuples(st.just("rename"), st.sampled_from("ab"), st.just(Channel.SMS)),
    ),
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=BEFORE, after=AFTER, nested=st.booleans(), automatic=st.booleans())
async def test_undoing_a_merge_restores_both_cards_exactly_on_randomised_histories(
    pool: asyncpg.Pool,
    before: list[tuple[str, Channel]],
    after: list[tuple[str, str, Channel]],
    nested: bool,
    automatic: bool,
) -> None:
    """Card b (with c merged into it first, when `nested`) is merged into a — by an admin, or by itself when
    `automatic` (b's customer confirmed by a code an email a holds verified); things happen to both, through
    either id; the merge is undone. Then b is exactly as it was plus its own later contacts, and a holds its
    own contacts and everything added through either id while they were one."""
    world = World(pool, phones={who: f"+1415{next(NUMBERS):07d}" for who in "abc"})
    mine: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    for who in "abc":  # every card exists, with one contact
        mine[who].append(await world.contact(who, Channel.SMS))
    edits, merges = CardEdits(pool), Merges(pool)
    await edits.patch(world.ids["b"], ClientPatch(profile=Profile(surname="Beta"), tags=["b"]))
    await edits.add_note(world.ids["b"], "b's own note", "admin")
    if nested:
        await merges.merge(world.ids["b"], world.ids["c"], actor="admin", reason="test")
    email = f"a{uuid.uuid4().hex[:12]}@example.com"
    if automatic:  # a holds it verified (a DMARC-passing mail, or a code), before anything else happens
        await edits.add_identity(world.ids["a"], NewIdentity(IdentityKind.EMAIL, email, email, True, "contact"))
    for who, channel in before:
        mine[who].append(await world.contact(who, channel))
    b_before, a_before = await world.card("b"), await world.card("a")

    if automatic:
        proved = await ProvedIdentities(pool).merge_on_proof(
            world.ids["b"], world.ids["a"], Evidence("email", email, "agent_code", "admin")
        )
        assert proved is not None and proved.survivor_id == world.ids["a"]
        merge = proved
    else:
        merge = await merges.merge(world.ids["a"], world.ids["b"], actor="admin", reason="test")
    a_added: list[tuple[str, str]] = []
    a_notes: list[str] = []
    for n, (action, via, channel) in enumerate(after):
        if action == "contact":
            mine[via].append(await world.contact(via, channel))
        elif action == "note":
            a_notes.append(f"note {n}")
            await edits.add_note(world.ids[via], f"note {n}", "admin")
        elif action == "identity":
            value = f"ERP-{uuid.uuid4().hex[:8]}"
            a_added.append(("external", value))
            await edits.add_identity(world.ids[via], NewIdentity(IdentityKind.EXTERNAL, value, value, False))
        else:
            await edits.patch(world.ids[via], ClientPatch(profile=Profile(given_name=f"Name {n}")))
        merged = await world.card(via)
        assert merged["client"]["id"] == str(world.ids["a"]), "either id answers with the survivor"
    await merges.undo(merge.id, actor="admin")

    a, b = await world.card("a"), await world.card("b")
    b_own = mine["b"] + (mine["c"] if nested else [])
    assert sorted(_bodies(b)) == sorted(b_own) and _bodies(b) == sorted(b_own, key=lambda s: int(s.split("-")[1]))[::-1]
    for key in ("profile", "tags", "identities", "notes", "client"):
        assert b[key] == b_before[key], key
    assert sorted(_bodies(a)) == sorted(mine["a"])
    assert [(i["kind"], i["value"]) for i in a["identities"]] == [
        (i["kind"], i["value"]) for i in a_before["identities"]
    ] + a_added
    assert [n["body"] for n in a["notes"]] == a_notes[::-1]
    assert a["client"]["merged"] == [] and b["client"]["merged"] == ([str(world.ids["c"])] if nested else [])
    assert sum(a["counts"].values()) == len(mine["a"]) and sum(b["counts"].values()) == len(b_own)


@pytest.mark.parametrize(
    ("kind", "value", "channel"),
    [
        (IdentityKind.PHONE, "+14155550177", Channel.SMS),
        (IdentityKind.EMAIL, "dana@example.com", Channel.EMAIL),
        (IdentityKind.VISITOR, "v-1f2e3d", Channel.CHAT),
    ],
)
async def test_parallel_routers_resolving_one_new_identity_make_exactly_one_card(
    pool: asyncpg.Pool, kind: IdentityKind, value: str, channel: Channel
) -> None:
    """A burst from one sender spread over several routers (each its own store and connections)."""
    routers = [Conversations(pool) for _ in range(4)]
    burst = [
        Interaction(
            channel=channel,
            provider_id=f"P{n}",
            from_address=value,
            sender_kind=kind,
            from_verified=True,
            received_at=datetime.now(UTC),
        )
        for n in range(24)
    ]
    recorded = await asyncio.gather(
        *(routers[n % 4].record_inbound(x, Identity(kind, value, True)) for n, x in enumerate(burst))
    )
    assert len({r.client_id for r in recorded}) == 1
    assert await pool.fetchval("SELECT count(*) FROM clients") == 1
    assert await pool.fetchval("SELECT interactions FROM client_activity") == len(burst)


async def test_merging_the_same_two_cards_at_once_merges_them_once(pool: asyncpg.Pool) -> None:
    world = World(pool, phones={"a": "+14155550181", "b": "+14155550182"})
    await world.contact("a", Channel.SMS)
    await world.contact("b", Channel.SMS)
    merges = Merges(pool)
    a, b = world.ids["a"], world.ids["b"]
    results = await asyncio.gather(
        *(merges.merge(*pair, actor="admin", reason="race") for pair in [(a, b), (b, a)] * 3),
        return_exceptions=True,
    )
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 1, results
    assert await pool.fetchval("SELECT count(*) FROM clients WHERE merged_into IS NOT NULL") == 1
    assert await pool.fetchval("SELECT count(*) FROM client_merges") == 1


async def test_a_shared_identifier_still_reaches_its_card_and_the_card_says_shared_number(pool: asyncpg.Pool) -> None:
    world = World(pool, phones={"x": "anonymous"})
    await world.contact("x", Channel.VOICE)
    await world.contact("x", Channel.VOICE)
    card = await world.card("x")
    assert card["warnings"] == ["shared number"]
    assert [(i["value"], i["shared"], i["flags"]) for i in card["identities"]] == [
        ("anonymous", True, ["alphanumeric"])
    ]
    assert len(card["timeline"]) == 2
