"""Identities a customer proved, on the real PostgreSQL: a card holding the identity verified is merged with the
customer's; one holding it unverified, or a shared identifier, is only suggested; and a proof the card store
could not take leaves the code good for another try."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from channels.webchat.transcript import Transcript
from channels.webchat.verification import EmailProof
from contactcenter.agents.outbound import Claims
from contactcenter.errors import Unavailable
from contactcenter.store.card_edits import CardEdits, NewIdentity
from contactcenter.store.cards import Cards
from contactcenter.store.proofs import ProvedIdentities
from schema import IdentityKind

VISITOR = IdentityKind.VISITOR
EMAIL = IdentityKind.EMAIL


async def _card(pool: asyncpg.Pool, card_id: uuid.UUID) -> dict[str, Any]:
    text = await Cards(pool).by_id(card_id)
    assert text is not None
    card: dict[str, Any] = json.loads(text)
    return card


async def _events(pool: asyncpg.Pool, kind: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT data::text FROM events WHERE type = $1 ORDER BY seq", kind)
    return [json.loads(row[0]) for row in rows]


async def test_two_visitors_who_prove_one_email_are_one_card(pool: asyncpg.Pool) -> None:
    proofs = ProvedIdentities(pool)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    card = await proofs.proved(VISITOR, first, EMAIL, "eve@example.com")
    assert await proofs.proved(VISITOR, second, EMAIL, "eve@example.com") == card
    assert await proofs.proved(VISITOR, second, EMAIL, "eve@example.com") == card  # again: nothing more
    shown = await _card(pool, card)
    assert sorted((i["kind"], i["value"], i["verified"]) for i in shown["identities"]) == sorted(
        [(VISITOR, first, True), (EMAIL, "eve@example.com", True), (VISITOR, second, True)]
    )
    [merged] = await _events(pool, "client.merged")
    assert (merged["survivor_id"], merged["actor"]) == (str(card), f"visitor:{second}")
    assert len(await _events(pool, "client.created")) == 2


@pytest.mark.parametrize("shared", [False, True], ids=["held-unverified", "shared-identifier"])
async def test_an_email_held_unverified_or_shared_elsewhere_is_suggested_never_merged(
    pool: asyncpg.Pool, shared: bool
) -> None:
    proofs = ProvedIdentities(pool)
    other = await proofs.proved(VISITOR, str(uuid.uuid4()), EMAIL, "owner@example.com")
    if shared:
        await CardEdits(pool).add_identity(other, NewIdentity(EMAIL, "info@example.com", "info@example.com", True))
        await pool.execute(
            "INSERT INTO shared_identifiers (kind, value, reason) VALUES ('email', 'info@example.com', 'a team')"
        )
    else:
        await CardEdits(pool).add_identity(other, NewIdentity(EMAIL, "info@example.com", "info@example.com", False))

    mine = await proofs.proved(VISITOR, str(uuid.uuid4()), EMAIL, "info@example.com")
    assert mine != other
    assert await _events(pool, "client.merged") == []
    for card, its_match in ((mine, other), (other, mine)):
        shown = await _card(pool, card)
        assert [m["client_id"] for m in shown["possible_matches"]] == [str(its_match)]
    assert [i["kind"] for i in (await _card(pool, mine))["identities"]] == [VISITOR]


class _Mailer:
    def __init__(self) -> None:
        self.codes: list[str] = []

    async def send_code(self, to_address: str, code: str) -> None:
        self.codes.append(code)


class _StoreDown:
    async def proved(self, owner_kind: IdentityKind, owner: str, kind: IdentityKind, value: str) -> uuid.UUID:
        raise Unavailable("the card store did not answer")


async def test_a_proof_the_card_store_could_not_take_leaves_the_code_good(pool: asyncpg.Pool) -> None:
    visitor = uuid.uuid4()
    await Transcript(pool).claim(visitor, Claims(email="eve@example.com"))
    mailer = _Mailer()
    await EmailProof(pool, mailer, _StoreDown()).send_code(visitor)
    with pytest.raises(Unavailable):
        await EmailProof(pool, mailer, _StoreDown()).prove(visitor, mailer.codes[-1])
    assert await EmailProof(pool, mailer, _StoreDown()).verified(visitor) is None

    proof = EmailProof(pool, mailer, ProvedIdentities(pool))
    assert await proof.prove(visitor, mailer.codes[-1]) == "eve@example.com"
    assert await proof.verified(visitor) == "eve@example.com"
    text = await Cards(pool).by_identity(EMAIL, "eve@example.com")
    assert text is not None and str(visitor) in text
