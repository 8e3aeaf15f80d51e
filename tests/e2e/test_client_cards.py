"""One card behind every channel, through the running service: identities added by agents (409 naming the
card that holds one), profile, tags and notes, a merge whose survivor shows both histories and whose undo gives
both cards back — with what arrived meanwhile on the card its identity belongs to."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contactcenter.bus.interactions import inbound_message
from schema import Channel, IdentityKind, Interaction
from tests.conftest import DATABASE_URL
from tests.running import RunningService

DANA = "+14155550161"
DANA_AGAIN = "+14155550162"


async def _card_of(service: RunningService, phone: str, entries: int = 1) -> dict[str, Any]:
    """The card of `phone` once the router has stored `entries` of its contacts."""
    url = f"{service.base_url}/api/v1/clients/lookup"
    async with asyncio.timeout(20):
        while True:
            async with service.http.get(url, params={"phone": phone}, headers=service.admin_headers()) as response:
                if response.status == 200:
                    card: dict[str, Any] = await response.json()
                    if len(card["timeline"]) >= entries:
                        return card
            await asyncio.sleep(0.05)


async def _call(
    service: RunningService, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with service.http.request(
        method, f"{service.base_url}{path}", json=body, headers=headers or service.admin_headers()
    ) as response:
        answer: dict[str, Any] = await response.json()
        return response.status, answer


async def _events(service: RunningService, kind: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service.settings.database_schema})
    try:
        rows = await conn.fetch("SELECT data::text FROM events WHERE type = $1 ORDER BY seq", kind)
    finally:
        await conn.close()
    return [json.loads(row[0]) for row in rows]


async def test_an_identity_another_card_holds_is_409_naming_it_and_the_merge_shows_both_histories(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    await service.post_sms(sender=DANA, body="my car?")
    first = await _card_of(service, DANA)
    await service.post_sms(sender=DANA_AGAIN, body="from my other phone")
    second = await _card_of(service, DANA_AGAIN)
    first_id, second_id = first["client"]["id"], second["client"]["id"]
    assert first_id != second_id

    status, card = await _call(
        service, "POST", f"/api/v1/clients/{first_id}/identities", {"kind": "email", "value": " Dana@Example.COM "}
    )
    assert status == 201
    email = next(i for i in card["identities"] if i["kind"] == "email")
    assert (email["value"], email["raw"], email["verified"], email["source"]) == (
        "dana@example.com",
        " Dana@Example.COM ",
        False,
        "agent",
    )
    status, refused = await _call(
        service, "POST", f"/api/v1/clients/{second_id}/identities", {"kind": "email", "value": "dana@example.com"}
    )
    assert status == 409
    assert refused["error"]["client_id"] == first_id and refused["error"]["field"] == "value"

    status, merged = await _call(service, "POST", f"/api/v1/clients/{first_id}/merge", {"from": second_id})
    assert status == 200
    card = merged["card"]
    assert card["client"]["id"] == first_id and card["client"]["merged"] == [second_id]
    assert {i["value"] for i in card["identities"]} == {DANA, DANA_AGAIN, "dana@example.com"}
    assert [e["body"] for e in card["timeline"]] == ["from my other phone", "my car?"]
    assert card["counts"] == {"sms": 2}
    status, by_old_id = await _call(service, "GET", f"/api/v1/clients/{second_id}")
    assert status == 200 and by_old_id["client"]["id"] == first_id
    status, again = await _call(service, "POST", f"/api/v1/clients/{second_id}/merge", {"from": first_id})
    assert status == 409 and again["error"]["field"] == "from"
    assert [e["merge_id"] for e in await _events(service, "client.merged")] == [merged["merge_id"]]


async def test_undoing_a_merge_gives_both_cards_back_with_what_arrived_since_on_each(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    await service.post_sms(sender=DANA, body="one")
    first = await _card_of(service, DANA)
    await service.post_sms(sender=DANA_AGAIN, body="two")
    second = await _card_of(service, DANA_AGAIN)
    first_id, second_id = first["client"]["id"], second["client"]["id"]
    status, _ = await _call(service, "PATCH", f"/api/v1/clients/{second_id}", {"profile": {"surname": "Scully"}})
    assert status == 200
    _, before = await _call(service, "GET", f"/api/v1/clients/{second_id}")

    _, merged = await _call(service, "POST", f"/api/v1/clients/{first_id}/merge", {"from": second_id})
    await service.post_sms(sender=DANA_AGAIN, body="three, after the merge")
    await service.post_sms(sender=DANA, body="four, after the merge")
    survivor = await _card_of(service, DANA, entries=4)
    assert [e["body"] for e in survivor["timeline"]] == [
        "four, after the merge",
        "three, after the merge",
        "two",
        "one",
    ]
    assert (await _card_of(service, DANA_AGAIN, entries=4))["client"]["id"] == first_id

    status, undone = await _call(service, "DELETE", f"/api/v1/merges/{merged['merge_id']}")
    assert status == 200
    assert undone["survivor"]["client"]["id"] == first_id and undone["restored"]["client"]["id"] == second_id
    assert [e["body"] for e in undone["survivor"]["timeline"]] == ["four, after the merge", "one"]
    restored = undone["restored"]
    assert [e["body"] for e in restored["timeline"]] == ["three, after the merge", "two"]
    assert restored["profile"] == before["profile"] and restored["identities"] == before["identities"]
    assert restored["client"]["merged"] == [] and undone["survivor"]["client"]["merged"] == []
    assert (await _card_of(service, DANA_AGAIN))["client"]["id"] == second_id

    status, twice = await _call(service, "DELETE", f"/api/v1/merges/{merged['merge_id']}")
    assert status == 409 and twice["error"]["field"] == "merge_id"
    unmerged = await _events(service, "client.unmerged")
    assert [(e["survivor_id"], e["merged_id"], e["actor"]) for e in unmerged] == [(first_id, second_id, "admin")]


async def test_an_agent_edits_the_profile_tags_and_notes_each_an_event(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    agent_headers = {"Authorization": f"Bearer {agent['token']}"}
    await service.post_sms(sender=DANA, body="hello")
    client_id = (await _card_of(service, DANA))["client"]["id"]
    path = f"/api/v1/clients/{client_id}"

    profile = {
        "given_name": "Dana",
        "surname": "Scully",
        "date_of_birth": "1964-02-23",
        "address": {"line1": "1 Main St", "city": "Annapolis", "postcode": "21401", "region": "MD"},
    }
    status, card = await _call(service, "PATCH", path, {"profile": profile, "tags": ["vip", "fleet"]}, agent_headers)
    assert status == 200
    assert card["profile"]["date_of_birth"] == "1964-02-23" and card["profile"]["address"]["city"] == "Annapolis"
    assert card["tags"] == ["vip", "fleet"] and card["client"]["display_name"] == "Dana Scully"
    status, card = await _call(service, "PATCH", path, {"profile": {"surname": None}}, agent_headers)
    assert status == 200 and card["profile"]["surname"] is None and card["profile"]["given_name"] == "Dana"

    status, card = await _call(service, "POST", f"{path}/notes", {"body": "prefers mail"}, agent_headers)
    assert status == 201
    assert [(n["body"], n["author"]) for n in card["notes"]] == [("prefers mail", f"agent:{agent['id']}")]

    updated = await _events(service, "client.updated")
    assert [e["fields"] for e in updated] == [
        ["profile.given_name", "profile.surname", "profile.date_of_birth", "profile.address", "tags"],
        ["profile.surname"],
    ]
    assert all("Scully" not in json.dumps(e) for e in updated), "names only, never the values"
    assert len(await _events(service, "client.note_added")) == 1


async def test_bad_card_edits_are_400_naming_the_field(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    await service.post_sms(sender=DANA, body="hello")
    client_id = (await _card_of(service, DANA))["client"]["id"]
    path = f"/api/v1/clients/{client_id}"
    cases: list[tuple[str, str, object, str]] = [
        ("PATCH", path, {"profile": {"date_of_birth": "1964-13-45"}}, "profile.date_of_birth"),
        ("PATCH", path, {"profile": {"date_of_birth": "2999-01-01"}}, "profile.date_of_birth"),
        ("PATCH", path, {"tags": ["x" * 51]}, "tags.0"),
        ("PATCH", path, {"profile": {"given_name": "Da\x00na"}}, "profile.given_name"),
        ("PATCH", path, {"profile": {"shoe_size": 9}}, "profile.shoe_size"),
        ("PATCH", path, {"tags": ["ok", "bad\x07"]}, "tags.1"),
        ("POST", f"{path}/identities", {"kind": "phone", "value": "banana"}, "value"),
        ("POST", f"{path}/identities", {"kind": "email", "value": "no-at-sign"}, "value"),
        ("POST", f"{path}/identities", {"kind": "fax", "value": "1"}, "kind"),
        ("POST", f"{path}/notes", {"body": ""}, "body"),
        ("POST", f"{path}/merge", {"from": "not-a-uuid"}, "from"),
        ("POST", f"{path}/merge", {"from": client_id}, "from"),
        ("GET", f"{path}/timeline?cursor=garbage", None, "cursor"),
        ("GET", f"{path}/timeline?limit=0", None, "limit"),
        ("GET", f"{path}/timeline?limit={'9' * 5000}", None, "limit"),  # past the digits Python reads as an int
        ("GET", f"{path}/timeline?channel=fax", None, "channel"),
    ]
    for method, url, body, field in cases:
        status, answer = await _call(service, method, url, body)
        assert status in (400, 409), (method, url, body, status, answer)
        assert answer["error"]["field"] == field, (method, url, body, answer)
    status, answer = await _call(service, "GET", "/api/v1/clients/00000000-0000-0000-0000-000000000000/timeline")
    assert status == 404
    status, answer = await _call(service, "DELETE", "/api/v1/merges/00000000-0000-0000-0000-000000000000")
    assert status == 404 and answer["error"]["field"] == "merge_id"


async def test_a_lookup_by_any_kind_of_identity_finds_the_card(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    await service.post_sms(sender=DANA, body="hello")
    client_id = (await _card_of(service, DANA))["client"]["id"]
    for kind, value in (("external", "ERP-00042"), ("visitor", "v-7f3a"), ("phone", "+1 415 555 0100 ext. 12")):
        status, _ = await _call(
            service, "POST", f"/api/v1/clients/{client_id}/identities", {"kind": kind, "value": value}
        )
        assert status == 201
    url = f"{service.base_url}/api/v1/clients/lookup"
    for query in ({"external": "ERP-00042"}, {"visitor": "v-7f3a"}, {"phone": "(415) 555-0100 x12"}):
        async with service.http.get(url, params=query, headers=service.admin_headers()) as response:
            assert response.status == 200, query
            assert (await response.json())["client"]["id"] == client_id
    async with service.http.get(url, params={"phone": "+14155550100"}, headers=service.admin_headers()) as response:
        assert response.status == 404, "the switchboard is not the person at extension 12"
    status, card = await _call(service, "GET", f"/api/v1/clients/{client_id}")
    extension = next(i for i in card["identities"] if i["value"] == "+14155550100;ext=12")
    assert extension["flags"] == ["extension"]


async def test_a_likely_duplicate_is_suggested_on_both_cards_with_its_reasons(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    await service.post_sms(sender=DANA, body="one")
    await service.post_sms(sender=DANA_AGAIN, body="two")
    await service.post_sms(sender="+14155550199", body="three")
    first, second = (
        (await _card_of(service, DANA))["client"]["id"],
        (await _card_of(service, DANA_AGAIN))["client"]["id"],
    )
    other = (await _card_of(service, "+14155550199"))["client"]["id"]
    dana = {"given_name": "Dana", "surname": "Scully", "date_of_birth": "1964-02-23"}
    await _call(service, "PATCH", f"/api/v1/clients/{first}", {"profile": dana})
    await _call(service, "PATCH", f"/api/v1/clients/{other}", {"profile": {"given_name": "Fox", "surname": "Mulder"}})
    _, card = await _call(service, "PATCH", f"/api/v1/clients/{second}", {"profile": {**dana, "surname": "Scully"}})
    [match] = card["possible_matches"]
    assert match["client_id"] == first and 0.5 <= match["score"] <= 1
    assert match["reasons"][:3] == ["same surname", "same given name", "same date of birth"]
    assert "phone differs by one digit" in match["reasons"]
    _, card = await _call(service, "GET", f"/api/v1/clients/{first}")
    assert [m["client_id"] for m in card["possible_matches"]] == [second]

    _, merged = await _call(service, "POST", f"/api/v1/clients/{first}/merge", {"from": second})
    assert merged["card"]["possible_matches"] == []


async def test_a_card_is_exported_whole_and_erased_everywhere_its_counts_kept(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    await service.post_sms(sender=DANA, body="my secret is 1234")
    await service.post_sms(sender=DANA_AGAIN, body="other phone")
    first, second = (
        (await _card_of(service, DANA))["client"]["id"],
        (await _card_of(service, DANA_AGAIN))["client"]["id"],
    )
    await _call(service, "PATCH", f"/api/v1/clients/{first}", {"profile": {"surname": "Scully"}})
    await _call(service, "POST", f"/api/v1/clients/{first}/notes", {"body": "lives at 1 Main St"})
    await _call(service, "POST", f"/api/v1/clients/{first}/identities", {"kind": "email", "value": "dana@example.com"})
    await _call(service, "POST", f"/api/v1/clients/{first}/merge", {"from": second, "reason": "Dana said so"})

    agent_headers = {"Authorization": f"Bearer {agent['token']}"}
    status, _ = await _call(service, "GET", f"/api/v1/clients/{first}/export", headers=agent_headers)
    assert status == 403, "personal data whole is the admin's"
    status, document = await _call(service, "GET", f"/api/v1/clients/{second}/export")
    assert status == 200 and document["client"]["id"] == first and document["merged"] == [second]
    assert {x["body"] for x in document["interactions"]} == {"my secret is 1234", "other phone"}
    assert {i["value"] for i in document["identities"]} == {DANA, DANA_AGAIN, "dana@example.com"}
    assert [n["body"] for n in document["notes"]] == ["lives at 1 Main St"]

    status, erased = await _call(service, "DELETE", f"/api/v1/clients/{first}")
    assert status == 200
    assert erased["client"]["erased"] and erased["identities"] == [] and erased["notes"] == []
    assert erased["profile"]["surname"] is None and erased["counts"] == {"sms": 2}
    assert [e["body"] for e in erased["timeline"]] == ["", ""]

    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service.settings.database_schema})
    try:
        for table in ("clients", "identities", "interactions", "client_notes", "client_merges", "events"):
            dump = await conn.fetchval(
                f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t"
            )  # our own table names
            for secret in ("1234", "Scully", "1 Main St", "dana@example.com", "4155550161", "Dana said so"):
                assert secret not in dump, (table, secret)
        assert await conn.fetchval("SELECT count(*) FROM client_erasures") == 1
    finally:
        await conn.close()
    [event] = await _events(service, "client.erased")
    assert event == {"client_id": first, "merged": [second], "actor": "admin"}
    status, _ = await _call(service, "GET", "/api/v1/clients/lookup?phone=%2B14155550161")
    assert status == 404


async def test_a_sender_that_is_no_number_is_recorded_as_given_and_flagged(service: RunningService) -> None:
    """No adapter of ours lets such a sender in today, but a carrier's alphanumeric sender or a garbled number
    that reaches the router is kept on a card, never dropped to the dead letters."""
    await service.create_queue("sales", ["sms"])
    bus, topology = service.services.bus, service.services.topology
    contacts = [
        Interaction(
            channel=Channel.SMS,
            provider_id=f"SM-{sender}",
            from_address=sender,
            sender_kind=IdentityKind.PHONE,
            from_verified=True,
            body="hi",
            received_at=datetime.now(UTC),
        )
        for sender in ("ACME Bank", "555-0199-not-a-number")
    ]
    message = inbound_message(contacts)
    await bus.publish(topology.interactions, "interaction.sms.inbound", message, message_id="m", mandatory=True)
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service.settings.database_schema})
    try:
        async with asyncio.timeout(20):
            while await conn.fetchval("SELECT count(*) FROM interactions") < 2:
                await asyncio.sleep(0.05)
        rows = await conn.fetch("SELECT cc_card(client_id, 10)::json AS card FROM identities ORDER BY value")
    finally:
        await conn.close()
    identities = [json.loads(row["card"])["identities"][0] for row in rows]
    assert [(i["value"], i["flags"]) for i in identities] == [
        ("555-0199-not-a-number", ["unparsed"]),
        ("ACME Bank", ["alphanumeric"]),
    ]
