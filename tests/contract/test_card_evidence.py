"""The rest of issue 19's card on the real PostgreSQL: identifiers met on too many cards (or placeholders) are
quarantined as shared, also when routers and API processes meet them at once; an automatic merge keeps its
evidence and never happens on a shared identifier; and an erasure reaches chat transcripts and claims, stored mail
and attachments, and the contacts still in flight (a tombstone)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from channels.webchat.transcript import Transcript
from contactcenter.agents.outbound import Claims
from contactcenter.events import outbox
from contactcenter.identities import Identity
from contactcenter.store.card_edits import CardEdits, NewIdentity
from contactcenter.store.cards import Cards
from contactcenter.store.conversations import Conversations
from contactcenter.store.merges import Evidence, Merges
from contactcenter.store.privacy import Privacy
from contactcenter.store.proofs import ProvedIdentities
from contactcenter.store.shared_identifiers import SharedIdentifierList
from schema import Channel, IdentityKind, Interaction
from schema.events import IdentifierQuarantinedV1

PHONE = IdentityKind.PHONE
EMAIL = IdentityKind.EMAIL
VISITOR = IdentityKind.VISITOR


async def _contact(
    pool: asyncpg.Pool,
    kind: IdentityKind,
    value: str,
    *,
    channel: Channel = Channel.SMS,
    body: str = "hello",
    received_at: datetime | None = None,
    provider_id: str | None = None,
) -> uuid.UUID:
    """A verified contact from `value`; the card it was recorded on."""
    interaction = Interaction(
        channel=channel,
        provider_id=provider_id or f"P{uuid.uuid4().hex}",
        from_address=value,
        sender_kind=kind,
        from_verified=True,
        body=body,
        received_at=received_at or datetime.now(UTC),
    )
    recorded = await Conversations(pool).record_inbound(interaction, Identity(kind, value, True))
    return recorded.client_id


async def _card(pool: asyncpg.Pool, client_id: uuid.UUID) -> dict[str, Any]:
    text = await Cards(pool).by_id(client_id)
    assert text is not None
    card: dict[str, Any] = json.loads(text)
    return card


async def _shared(pool: asyncpg.Pool) -> dict[tuple[str, str], tuple[str, int | None]]:
    listed = await SharedIdentifierList(pool).quarantined(1000)
    return {(s.kind, s.value): (s.reason, s.cards) for s in listed}


async def test_an_identifier_met_on_more_cards_than_allowed_is_quarantined_and_the_card_says_shared_number(
    pool: asyncpg.Pool,
) -> None:
    landline = "+14155550300"
    holder = await _contact(pool, PHONE, landline)
    others = [await _contact(pool, PHONE, f"+1415555031{n}") for n in range(3)]
    proofs = ProvedIdentities(pool)
    # Two more cards (three in all) are within the policy's three.
    assert not await proofs.sighted(PHONE, landline, others[0], "agent_claim")
    assert not await proofs.sighted(PHONE, landline, others[1], "agent_claim")
    assert not await proofs.sighted(PHONE, landline, others[1], "agent_claim")  # the same card counts once
    assert (PHONE, landline) not in await _shared(pool)
    assert (await _card(pool, holder))["warnings"] == []
    assert await proofs.sighted(PHONE, landline, others[2], "agent_claim")
    assert (await _shared(pool))[("phone", landline)] == ("seen on 4 cards", 4)
    card = await _card(pool, holder)
    assert card["warnings"] == ["shared number"]
    assert [(i["value"], i["shared"]) for i in card["identities"]] == [(landline, True)]
    # It still reaches its card.
    assert await _contact(pool, PHONE, landline) == holder


async def test_cards_merged_into_one_count_once(pool: asyncpg.Pool) -> None:
    value = "+14155550320"
    holder = await _contact(pool, PHONE, value)
    a, b, c = [await _contact(pool, PHONE, f"+1415555032{n}") for n in (1, 2, 3)]
    await Merges(pool).merge(a, b, actor="admin", reason="one person")
    proofs = ProvedIdentities(pool)
    for card in (a, b, c):
        assert not await proofs.sighted(PHONE, value, card, "agent_claim")
    assert (PHONE, value) not in await _shared(pool)  # holder, a (with b), c: three cards
    assert (await _card(pool, holder))["warnings"] == []


@pytest.mark.parametrize("met_on", [3, 5], ids=["within-the-policy", "past-it"])
async def test_routers_meeting_one_identifier_at_once_count_each_other(pool: asyncpg.Pool, met_on: int) -> None:
    """Each sighting on its own connection, all at once: the advisory lock makes the count exact."""
    value = f"switchboard-{met_on}@example.com"
    cards = [
        await _contact(pool, EMAIL, f"person{n}-{met_on}@example.com", channel=Channel.EMAIL) for n in range(met_on)
    ]
    stores = [ProvedIdentities(pool) for _ in cards]
    outcomes = await asyncio.gather(
        *(store.sighted(EMAIL, value, card, "agent_claim") for store, card in zip(stores, cards, strict=True))
    )
    shared = await _shared(pool)
    if met_on <= 3:
        assert not any(outcomes) and (EMAIL, value) not in shared
    else:
        assert outcomes.count(True) == 1, "quarantined exactly once"
        assert shared[("email", value)] == ("seen on 4 cards", 4)


async def test_what_chat_visitors_claim_counts_as_met_on_their_cards(pool: asyncpg.Pool) -> None:
    transcript = Transcript(pool)
    claimed = "family@example.com"
    for n in range(4):
        visitor = uuid.uuid4()
        await transcript.append(visitor, "visitor", f"m{n}", "hi")
        await _contact(pool, VISITOR, str(visitor), channel=Channel.CHAT)
        await transcript.claim(visitor, Claims(name=f"Visitor {n}", email=claimed))
    assert (await _shared(pool))[("email", claimed)] == ("seen on 4 cards", 4)


async def test_what_chat_visitors_claim_before_their_first_message_counts_once_they_have_a_card(
    pool: asyncpg.Pool,
) -> None:
    """`identify` first, the first message after: the claim is met on the card the message makes."""
    transcript = Transcript(pool)
    claimed, phone = "family@example.com", "+14155550177"
    for n in range(4):
        visitor = uuid.uuid4()
        await transcript.claim(visitor, Claims(name=f"Visitor {n}", email=claimed, phone=phone))
        await transcript.append(visitor, "visitor", f"m{n}", "hi")
        await _contact(pool, VISITOR, str(visitor), channel=Channel.CHAT)
    shared = await _shared(pool)
    assert (shared[("email", claimed)], shared[("phone", phone)]) == (("seen on 4 cards", 4), ("seen on 4 cards", 4))


@pytest.mark.parametrize(
    ("kind", "value", "channel"),
    [
        (PHONE, "Restricted", Channel.VOICE),
        (PHONE, "+10000000000", Channel.VOICE),
        (PHONE, "+7378742833", Channel.VOICE),
        (EMAIL, "mailer-daemon@example.org", Channel.EMAIL),
    ],
)
async def test_a_placeholder_is_quarantined_when_first_met(
    pool: asyncpg.Pool, kind: IdentityKind, value: str, channel: Channel
) -> None:
    card = await _contact(pool, kind, value, channel=channel)
    assert (await _shared(pool))[(str(kind), value)][0] == "placeholder"
    assert (await _card(pool, card))["warnings"] in (["shared number"], ["shared identifier"])


async def test_a_released_identifier_is_not_quarantined_again(pool: asyncpg.Pool) -> None:
    value = "+14155550340"
    await _contact(pool, PHONE, value)
    cards = [await _contact(pool, PHONE, f"+1415555034{n}") for n in range(1, 6)]
    proofs = ProvedIdentities(pool)
    for card in cards[:3]:
        await proofs.sighted(PHONE, value, card, "agent_claim")
    assert (PHONE, value) in await _shared(pool)
    released = await SharedIdentifierList(pool).release("phone", value, actor="admin")
    assert released.released_by == "admin"
    for card in cards[3:]:
        assert not await proofs.sighted(PHONE, value, card, "agent_claim")
    assert (PHONE, value) not in await _shared(pool)


async def test_an_automatic_merge_keeps_its_evidence_and_never_happens_on_a_shared_identifier(
    pool: asyncpg.Pool,
) -> None:
    edits, proofs = CardEdits(pool), ProvedIdentities(pool)
    holder = await _contact(pool, PHONE, "+14155550350")
    prover = await _contact(pool, PHONE, "+14155550351")
    await edits.add_identity(holder, NewIdentity(EMAIL, "dana@example.com", "dana@example.com", True, "contact"))
    await edits.add_identity(holder, NewIdentity(EMAIL, "desk@example.com", "desk@example.com", True, "contact"))
    await pool.execute("INSERT INTO shared_identifiers (kind, value, reason) VALUES ('email', 'desk@example.com', 'x')")

    shared = Evidence("email", "desk@example.com", "agent_code", "agent:1")
    assert await proofs.merge_on_proof(prover, holder, shared) is None
    merge = await proofs.merge_on_proof(prover, holder, Evidence("email", "dana@example.com", "agent_code", "admin"))
    assert merge is not None and (merge.survivor_id, merge.merged_id) == (holder, prover)
    row = await pool.fetchrow("SELECT actor, automatic, evidence, reason FROM client_merges")
    assert row is not None and row["automatic"] and row["actor"] == "admin"
    assert row["evidence"] == {
        "kind": "email",
        "value": "dana@example.com",
        "proof": "agent_code",
        "by": "admin",
    }
    event = json.loads(await pool.fetchval("SELECT data::text FROM events WHERE type = 'client.merged'"))
    assert event["automatic"] is True and event["evidence"]["value"] == "dana@example.com"
    [exported] = json.loads(await Privacy(pool).export(prover))["merges"]
    assert exported["automatic"] is True and exported["evidence"]["proof"] == "agent_code"

    # Erasing the merged card takes the evidence from the audit and from the event.
    await Privacy(pool).erase(holder, actor="admin")
    row = await pool.fetchrow("SELECT evidence, reason FROM client_merges")
    assert row is not None and (row["evidence"], row["reason"]) == (None, "")
    event = json.loads(await pool.fetchval("SELECT data::text FROM events WHERE type = 'client.merged'"))
    assert "evidence" not in event and event["reason"] == ""


async def test_a_card_with_no_verified_identity_of_its_own_is_not_merged_by_a_proof(pool: asyncpg.Pool) -> None:
    proofs = ProvedIdentities(pool)
    holder = await _contact(pool, PHONE, "+14155550360")
    await CardEdits(pool).add_identity(holder, NewIdentity(EMAIL, "eve@example.com", "eve@example.com", True))
    unverified = Interaction(
        channel=Channel.EMAIL,
        provider_id="<spoofed@example.net>",
        from_address="somebody@example.net",
        sender_kind=EMAIL,
        from_verified=False,  # no DMARC pass
        received_at=datetime.now(UTC),
    )
    recorded = await Conversations(pool).record_inbound(unverified, Identity(EMAIL, "somebody@example.net", False))
    evidence = Evidence("email", "eve@example.com", "agent_code", "admin")
    assert await proofs.merge_on_proof(recorded.client_id, holder, evidence) is None
    assert await pool.fetchval("SELECT count(*) FROM client_merges") == 0


async def test_erasure_reaches_chat_transcripts_and_claims(pool: asyncpg.Pool) -> None:
    transcript = Transcript(pool)
    visitor = uuid.uuid4()
    await transcript.append(visitor, "visitor", "m1", "my address is 1 Main St")
    card = await _contact(pool, VISITOR, str(visitor), channel=Channel.CHAT, body="my address is 1 Main St")
    await transcript.claim(visitor, Claims(name="Dana", email="dana@example.com", phone="+14155550370"))
    await pool.execute("UPDATE chat_visitors SET verified_email = 'dana@example.com' WHERE visitor_id = $1", visitor)
    other = uuid.uuid4()
    await transcript.append(other, "visitor", "m1", "someone else's words")

    await Privacy(pool).erase(card, actor="admin")
    assert await transcript.after(visitor, 0) == []
    assert await transcript.claims(visitor) == Claims()
    row = await pool.fetchrow(
        "SELECT claims::text, verified_email, last_seq FROM chat_visitors WHERE visitor_id = $1", visitor
    )
    assert row is not None and (row["claims"], row["verified_email"], row["last_seq"]) == ("{}", None, 1)
    assert [e.text for e in await transcript.after(other, 0)] == ["someone else's words"]
    assert await pool.fetchval("SELECT count(*) FROM identifier_sightings") == 0


async def _keep_mail(pool: asyncpg.Pool, message_id: str, sender: str, text: str) -> None:
    await pool.execute(
        "INSERT INTO email_messages (message_id, direction, client_address, subject, text_body, html_body, raw) "
        "VALUES ($1, 'inbound', $2, 'About my order', $3, $4, $5)",
        message_id,
        sender,
        text,
        f"<p>{text}</p>",
        text.encode(),
    )
    await pool.execute(
        "INSERT INTO email_attachments (id, message_id, position, filename, content_type, size, content) "
        "VALUES ($1, $2, 0, 'passport.pdf', 'application/pdf', 3, 'PDF'::bytea)",
        uuid.uuid4(),
        message_id,
    )


async def test_the_export_holds_the_card_s_chat_transcripts_and_stored_mail(pool: asyncpg.Pool) -> None:
    transcript = Transcript(pool)
    visitor = uuid.uuid4()
    await transcript.append(visitor, "visitor", "m1", "my address is 1 Main St")
    card = await _contact(pool, VISITOR, str(visitor), channel=Channel.CHAT, body="my address is 1 Main St")
    await transcript.claim(visitor, Claims(name="Dana", email="dana@example.com"))
    await transcript.append(uuid.uuid4(), "visitor", "m1", "someone else's words")
    await CardEdits(pool).add_identity(card, NewIdentity(EMAIL, "dana@example.com", "dana@example.com", False))
    await _keep_mail(pool, "<one@example.com>", "dana@example.com", "my passport, attached")
    await _keep_mail(pool, "<other@example.com>", "eve@example.com", "not hers")

    exported = json.loads(await Privacy(pool).export(card))
    [chat] = exported["chat"]
    assert (chat["visitor_id"], chat["claims"]["email"]) == (str(visitor), "dana@example.com")
    assert [(m["sender"], m["body"]) for m in chat["messages"]] == [("visitor", "my address is 1 Main St")]
    [mail] = exported["mail"]
    assert (mail["message_id"], mail["subject"], mail["text_body"]) == (
        "<one@example.com>",
        "About my order",
        "my passport, attached",
    )
    assert mail["attachments"] == [{"filename": "passport.pdf", "content_type": "application/pdf", "size": 3}]

    await Privacy(pool).erase(card, actor="admin")
    after = json.loads(await Privacy(pool).export(card))
    assert [c["messages"] for c in after["chat"]] == []  # the visitor identity went with the erasure
    assert after["mail"] == []  # the card's addresses went too; what is kept of the mail is its Message-ID


async def test_erasure_reaches_stored_mail_and_its_attachments_also_a_mail_still_in_flight(pool: asyncpg.Pool) -> None:
    address = "dana@example.com"
    await _keep_mail(pool, "<one@example.com>", address, "my passport, attached")
    card = await _contact(pool, EMAIL, address, channel=Channel.EMAIL, provider_id="<one@example.com>")
    await _keep_mail(pool, "<two@example.com>", address, "still on the bus")  # kept by the channel, not yet routed
    await _keep_mail(pool, "<other@example.com>", "other@example.com", "not Dana's")

    await Privacy(pool).erase(card, actor="admin")
    rows = await pool.fetch(
        "SELECT message_id, client_address, subject, text_body, html_body, raw FROM email_messages ORDER BY message_id"
    )
    kept = {row["message_id"]: tuple(row.values())[1:] for row in rows}
    assert kept["<one@example.com>"] == kept["<two@example.com>"] == ("", "", "", "", None)
    assert kept["<other@example.com>"][0] == "other@example.com"
    attachments = await pool.fetch("SELECT message_id FROM email_attachments")
    assert [row["message_id"] for row in attachments] == ["<other@example.com>"]


async def test_a_contact_received_before_the_erasure_and_recorded_after_it_brings_nothing_back(
    pool: asyncpg.Pool,
) -> None:
    """In flight on the bus while the card was erased: recorded emptied on the erased card, closed, no identity
    made again. A contact received after the erasure is a stranger's, on a new card."""
    phone = "+14155550380"
    card = await _contact(pool, PHONE, phone, body="first")
    received_before = datetime.now(UTC) - timedelta(seconds=1)
    await Privacy(pool).erase(card, actor="admin")

    in_flight = Interaction(
        channel=Channel.SMS,
        provider_id="SM-in-flight",
        from_address=phone,
        sender_kind=PHONE,
        from_verified=True,
        body="my card number is 4111",
        received_at=received_before,
    )
    recorded = await Conversations(pool).record_inbound(in_flight, Identity(PHONE, phone, True), with_card=True)
    assert recorded.client_id == card and not recorded.conversation_open
    again = await Conversations(pool).record_inbound(in_flight, Identity(PHONE, phone, True))  # a redelivery
    assert again.client_id == card and not again.new
    erased = await _card(pool, card)
    assert erased["identities"] == [] and erased["counts"] == {"sms": 2}
    assert [(e["body"]) for e in erased["timeline"]] == ["", ""]
    assert await pool.fetchval("SELECT count(*) FROM identities") == 0
    stored = await pool.fetchrow("SELECT body, from_address FROM interactions WHERE provider_id = 'SM-in-flight'")
    assert stored is not None and tuple(stored.values()) == ("", "")
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM identity_tombstones WHERE digest = cc_identity_digest('phone', $1)", phone
        )
        == 1
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM identity_tombstones WHERE position($1::bytea IN digest) > 0", phone.encode()
        )
        == 0
    )

    later = await _contact(pool, PHONE, phone, body="I am new here")
    assert later != card
    assert [e["body"] for e in (await _card(pool, later))["timeline"]] == ["I am new here"]


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


async def _quarantines(
    pool: asyncpg.Pool, kind: str = "identifier.quarantined"
) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await pool.fetch("SELECT subject, partition_key, data FROM events WHERE type = $1 ORDER BY seq", kind)
    return [(row["subject"], row["partition_key"], row["data"]) for row in rows]


async def _quarantine_landline(pool: asyncpg.Pool, landline: str) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """The landline's card, and three more it is seen on: past the policy's three."""
    holder = await _contact(pool, PHONE, landline)
    others = [await _contact(pool, PHONE, f"{landline[:-1]}{n}") for n in range(1, 4)]
    for other in others:
        await ProvedIdentities(pool).sighted(PHONE, landline, other, "agent_claim")
    return holder, others


async def test_a_quarantine_is_told_with_the_identifier_s_digest_never_its_value(pool: asyncpg.Pool) -> None:
    landline = "+14155550350"
    await _quarantine_landline(pool, landline)
    await _contact(pool, PHONE, "Restricted", channel=Channel.VOICE)
    digest, placeholder = _digest("phone", landline), _digest("phone", "Restricted")
    assert await _quarantines(pool) == [
        (digest, f"identifier:{digest}", {"kind": "phone", "digest": digest, "reason": "seen on 4 cards", "cards": 4}),
        (
            placeholder,
            f"identifier:{placeholder}",
            {"kind": "phone", "digest": placeholder, "reason": "placeholder", "cards": None},
        ),
    ]
    told = await pool.fetchval("SELECT string_agg(data::text, ' ') FROM events WHERE type = 'identifier.quarantined'")
    assert "4155550350" not in told and "Restricted" not in told
    assert set(IdentifierQuarantinedV1.model_fields) == {"kind", "digest", "reason", "cards"}
    # Told once: meeting it on more cards changes nothing.
    await ProvedIdentities(pool).sighted(PHONE, landline, await _contact(pool, PHONE, "+14155550359"), "agent_claim")
    assert len(await _quarantines(pool)) == 2

    # Its release is told the same way, in the identifier's order.
    await SharedIdentifierList(pool).release("phone", landline, actor="admin")
    assert await _quarantines(pool, "identifier.released") == [
        (digest, f"identifier:{digest}", {"kind": "phone", "digest": digest, "released_by": "admin"})
    ]
    released = await pool.fetchval("SELECT data::text FROM events WHERE type = 'identifier.released'")
    assert "4155550350" not in released


@pytest.mark.parametrize("erased", ["holder", "seen_on"], ids=["the-card-holding-it", "a-card-it-was-seen-on"])
async def test_erasing_a_card_empties_the_digest_of_its_identifiers_quarantines_and_their_webhook_copies(
    pool: asyncpg.Pool, erased: str
) -> None:
    landline = "+14155550360"
    holder, others = await _quarantine_landline(pool, landline)
    await _quarantine_landline(pool, "+14155550370")  # another card's: left as it is
    for released in (landline, "+14155550370"):  # released, told so: emptied the same way
        await SharedIdentifierList(pool).release("phone", released, actor="admin")
    webhook_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO webhooks (id, url, types, types_regex, secret)"
        " VALUES ($1, 'https://erp.example/hook', '{#}', '', 'secret')",
        webhook_id,
    )
    async with pool.acquire() as conn:
        for event in await outbox.stamp(conn, 1000):
            await conn.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event_id, event_sequence, body) VALUES ($1, $2, $3, $4)",
                webhook_id,
                str(event.id),
                event.id,
                event.body(),
            )

    await Privacy(pool).erase(holder if erased == "holder" else others[0], actor="admin")
    mine, theirs = _digest("phone", landline), _digest("phone", "+14155550370")
    assert await _quarantines(pool) == [
        ("", "identifier:", {"kind": "phone", "digest": "", "reason": "seen on 4 cards", "cards": 4}),
        (theirs, f"identifier:{theirs}", {"kind": "phone", "digest": theirs, "reason": "seen on 4 cards", "cards": 4}),
    ]
    copies = [
        json.loads(row["body"])
        for row in await pool.fetch("SELECT body FROM webhook_deliveries ORDER BY event_sequence")
    ]
    for kind in ("identifier.quarantined", "identifier.released"):
        told = [c for c in copies if c["type"] == f"org.contactcenter.{kind}"]
        assert [(c["subject"], c["partitionkey"], c["data"]["digest"]) for c in told] == [
            ("", "identifier:", ""),
            (theirs, f"identifier:{theirs}", theirs),
        ], kind
    assert [data["digest"] for _, _, data in await _quarantines(pool, "identifier.released")] == ["", theirs]
    assert mine not in json.dumps(copies)
