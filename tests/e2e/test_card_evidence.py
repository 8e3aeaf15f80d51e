"""The rest of issue 19's card through the running service on the real PostgreSQL, Redis and RabbitMQ: an identity
the customer confirmed by a code merges two cards by itself (a claim never does), undone like any merge; an
identifier claimed on too many cards is quarantined, listed and released by an admin; an erasure takes the card's
waiting contact out of live state, and a contact in flight on the bus when the card was erased brings nothing
back."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contactcenter.agents.releases import LiveReleases
from contactcenter.bus.interactions import inbound_message
from contactcenter.host.app import Role
from contactcenter.settings import Settings
from contactcenter.store.privacy import Privacy
from contactcenter.store.releases import PendingReleases
from schema import Channel, IdentityKind, Interaction
from tests.conftest import DATABASE_URL
from tests.e2e.test_client_cards import _card_of
from tests.e2e.test_voice import MENU, VOICE, call, call_to_queue, put_menu
from tests.running import FakeTwilioApi, RunningService, run_service
from tests.visitors import ChatVisitor

DANA = "+14155550461"
DANA_AGAIN = "+14155550462"


async def _call(
    service: RunningService,
    method: str,
    path: str,
    body: object = None,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with service.http.request(
        method, f"{service.base_url}{path}", json=body, headers=headers or service.admin_headers(), params=params
    ) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


async def _sql(service: RunningService, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": service.settings.database_schema})
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _events(service: RunningService, kind: str) -> list[dict[str, Any]]:
    rows = await _sql(service, "SELECT data::text FROM events WHERE type = $1 ORDER BY seq", kind)
    return [json.loads(row[0]) for row in rows]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_identity_confirmed_by_a_code_that_another_card_holds_verified_merges_them_by_itself(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    await service.post_sms(sender=DANA, body="from my mobile")
    await service.post_sms(sender=DANA_AGAIN, body="from my work phone")
    first, second = (
        (await _card_of(service, DANA))["client"]["id"],
        (await _card_of(service, DANA_AGAIN))["client"]["id"],
    )
    dana = {"kind": "email", "value": "Dana@Example.com", "verified": True}
    status, _ = await _call(service, "POST", f"/api/v1/clients/{second}/identities", dana)
    assert status == 201  # the customer on the work phone confirmed the code: verified there

    # What the agent hears is a claim: 409 naming the card, never a merge.
    claim = {"kind": "email", "value": "dana@example.com"}
    status, refused = await _call(
        service, "POST", f"/api/v1/clients/{first}/identities", claim, headers=_bearer(agent["token"])
    )
    assert (status, refused["error"]["client_id"], refused["error"]["field"]) == (409, second, "value")
    assert await _events(service, "client.merged") == []

    # Confirmed by a code on the mobile's card too: two proofs of one person, merged by themselves.
    status, card = await _call(
        service, "POST", f"/api/v1/clients/{first}/identities", dana, headers=_bearer(agent["token"])
    )
    assert status == 201
    assert (card["client"]["id"], card["client"]["merged"]) == (second, [first])
    assert sorted(e["body"] for e in card["timeline"]) == ["from my mobile", "from my work phone"]
    [merged] = await _events(service, "client.merged")
    assert (merged["survivor_id"], merged["merged_id"], merged["automatic"]) == (second, first, True)
    assert merged["evidence"] == {
        "kind": "email",
        "value": "dana@example.com",
        "proof": "agent_code",
        "by": f"agent:{agent['id']}",
    }
    [audit] = await _sql(service, "SELECT actor, automatic, reason FROM client_merges")
    assert (audit["actor"], audit["automatic"]) == (f"agent:{agent['id']}", True) and "verified" in audit["reason"]

    # Undone exactly like a merge an agent made.
    status, undone = await _call(service, "DELETE", f"/api/v1/merges/{merged['merge_id']}")
    assert status == 200
    assert [i["value"] for i in undone["restored"]["identities"]] == [DANA]
    assert [i["value"] for i in undone["survivor"]["identities"]] == [DANA_AGAIN, "dana@example.com"]


async def test_a_number_claimed_on_too_many_cards_is_quarantined_listed_and_released_by_an_admin(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    switchboard = "+14155550470"
    await service.post_sms(sender=switchboard, body="from the front desk")
    holder = (await _card_of(service, switchboard))["client"]["id"]
    others = []
    for n in range(1, 4):
        await service.post_sms(sender=f"+1415555047{n}", body="me")
        others.append((await _card_of(service, f"+1415555047{n}"))["client"]["id"])
    for n, other in enumerate(others):
        status, _ = await _call(
            service, "POST", f"/api/v1/clients/{other}/identities", {"kind": "phone", "value": switchboard}
        )
        assert status == 409
        status, listed = await _call(service, "GET", "/api/v1/shared-identifiers")
        shared = {(s["kind"], s["value"]): s for s in listed["shared_identifiers"]}
        assert (("phone", switchboard) in shared) == (n == 2), "quarantined on the fourth card, not before"
    assert (shared[("phone", switchboard)]["reason"], shared[("phone", switchboard)]["cards"]) == ("seen on 4 cards", 4)
    card = await _card_of(service, switchboard)
    assert card["client"]["id"] == holder and card["warnings"] == ["shared number"]

    # Quarantined, it never merges, even confirmed by a code.
    confirmed = {"kind": "phone", "value": switchboard, "verified": True}
    status, refused = await _call(service, "POST", f"/api/v1/clients/{others[0]}/identities", confirmed)
    assert (status, refused["error"]["client_id"]) == (409, holder)
    assert await _events(service, "client.merged") == []

    # Released by an admin: off the list, off the card, and not put back by the next claim.
    status, released = await _call(
        service, "DELETE", "/api/v1/shared-identifiers", params={"kind": "phone", "value": switchboard}
    )
    assert (status, released) == (200, {"kind": "phone", "value": switchboard, "released_by": "admin"})
    status, _ = await _call(
        service, "POST", f"/api/v1/clients/{others[1]}/identities", {"kind": "phone", "value": switchboard}
    )
    assert status == 409
    status, listed = await _call(service, "GET", "/api/v1/shared-identifiers")
    assert ("phone", switchboard) not in {(s["kind"], s["value"]) for s in listed["shared_identifiers"]}
    assert (await _card_of(service, switchboard))["warnings"] == []


async def test_the_shared_identifier_api_refuses_bad_input_with_4xx_naming_the_field(service: RunningService) -> None:
    await service.create_queue("sales", ["sms"])
    agent = await service.create_agent("Ann", ["sales"])
    path = "/api/v1/shared-identifiers"
    cases: list[tuple[str, dict[str, str], dict[str, str] | None, int, str | None]] = [
        ("DELETE", {"kind": "fax", "value": "+14155550480"}, None, 400, "kind"),
        ("DELETE", {"value": "+14155550480"}, None, 400, "kind"),
        ("DELETE", {"kind": "phone", "value": ""}, None, 400, "value"),
        ("DELETE", {"kind": "phone", "value": "+1415\x00555"}, None, 400, "value"),
        ("DELETE", {"kind": "phone", "value": "+14155550480"}, None, 404, "value"),  # not quarantined
        ("DELETE", {"kind": "phone", "value": "anonymous"}, _bearer(agent["token"]), 403, None),
        ("GET", {"limit": "0"}, None, 400, "limit"),
        ("GET", {"limit": "\uff11\uff10"}, None, 400, "limit"),  # fullwidth digits
        ("GET", {"limit": "9" * 5000}, None, 400, "limit"),  # past the digits Python reads as an int
        ("GET", {}, _bearer(agent["token"]), 403, None),
    ]
    for method, params, headers, expected, field in cases:
        async with service.http.request(
            method, f"{service.base_url}{path}", params=params, headers=headers or service.admin_headers()
        ) as response:
            body = await response.json()
            assert response.status == expected, (params, body)
            assert body["error"].get("field") == field, (params, body)
    # Invalid UTF-8 in the query string: still a 4xx with a JSON body, never a 500.
    async with service.http.delete(
        f"{service.base_url}{path}?kind=phone&value=%FF%FE", headers=service.admin_headers()
    ) as response:
        assert 400 <= response.status < 500 and "error" in await response.json()
    # A seeded placeholder is listed, and one a card holds shows there too.
    status, listed = await _call(service, "GET", path, params={"limit": "1000"})
    assert status == 200 and ("phone", "anonymous") in {(s["kind"], s["value"]) for s in listed["shared_identifiers"]}


async def test_erasing_a_card_takes_its_waiting_contact_out_of_live_state_and_revokes_its_offer(
    service: RunningService,
) -> None:
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent("Ann", ("sales",))
    await service.post_sms(sender=DANA, body="call me about my account")
    offer = await desktop.receive("offer")
    dana = offer["card"]["client"]["id"]
    await service.post_sms(sender=DANA_AGAIN, body="someone else, waiting")
    other = await _card_of(service, DANA_AGAIN)
    [waiting] = await _sql(service, "SELECT id FROM conversations WHERE client_id = $1", other["client"]["id"])
    redis, prefix = service.services.redis, f"{service.settings.namespace}:"
    [dana_conversation] = await _sql(service, "SELECT id FROM conversations WHERE client_id = $1", dana)
    assert await redis.exists(f"{prefix}task:{dana_conversation['id']}") == 1

    status, erased = await _call(service, "DELETE", f"/api/v1/clients/{dana}")
    assert status == 200 and erased["client"]["erased"]
    revoked = await desktop.receive("revoked")
    assert (revoked["reservation_id"], revoked["reason"]) == (offer["reservation"]["id"], "erased")
    # Freed, the agent is offered the contact that waited behind.
    next_offer = await desktop.receive("offer")
    assert next_offer["card"]["client"]["id"] == other["client"]["id"]
    assert await redis.exists(f"{prefix}task:{dana_conversation['id']}") == 0
    assert await redis.exists(f"{prefix}task:{waiting['id']}") == 1
    [closed] = await _sql(service, "SELECT state FROM conversations WHERE id = $1", dana_conversation["id"])
    assert closed["state"] == "closed"
    [told] = await _events(service, "conversation.closed")
    assert (told["conversation_id"], told["agent_id"], told["reason"]) == (str(dana_conversation["id"]), None, "erased")
    assert await _sql(service, "SELECT 1 FROM live_releases") == []
    await desktop.close()


async def test_erasing_a_card_closes_the_conversation_an_agent_on_another_api_process_holds_and_frees_the_agent(
    service_settings: Settings,
) -> None:
    """The agent's socket on one API process, the erasure on another: the conversation the agent accepted is
    closed in the erasure's transaction (`conversation.closed`, reason `erased`, naming the agent), the agent is
    told (`closed`) and freed: it is offered the contact that waited behind."""
    async with (
        run_service(service_settings, Role.ROUTER),
        run_service(service_settings, Role.API) as agents_side,
        run_service(service_settings, Role.API) as admin_side,
    ):
        await admin_side.create_queue("sales", ["sms"])
        agent = await admin_side.create_agent("Ann", ["sales"])
        desktop = await agents_side.agent_desktop(agent["token"])
        await desktop.command({"type": "state", "state": "available"}, "state")
        await admin_side.post_sms(sender=DANA, body="please erase everything you hold about me")
        offer = await desktop.receive("offer")
        dana, conversation = offer["card"]["client"]["id"], offer["reservation"]["conversation_id"]
        await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
        await admin_side.post_sms(sender=DANA_AGAIN, body="someone else, waiting behind")
        other = await _card_of(admin_side, DANA_AGAIN)

        status, erased = await _call(admin_side, "DELETE", f"/api/v1/clients/{dana}")
        assert status == 200 and erased["client"]["erased"] and erased["open_conversations"] == []
        closed = await desktop.receive("closed")
        assert closed == {
            "type": "closed",
            "agent_id": desktop.agent_id,
            "conversation_id": conversation,
            "reason": "erased",
        }
        next_offer = await desktop.receive("offer")
        assert next_offer["card"]["client"]["id"] == other["client"]["id"]

        [told] = await _events(admin_side, "conversation.closed")
        assert (told["conversation_id"], told["agent_id"], told["reason"]) == (conversation, desktop.agent_id, "erased")
        [row] = await _sql(admin_side, "SELECT state FROM conversations WHERE id = $1::uuid", conversation)
        assert row["state"] == "closed"
        assert await _sql(admin_side, "SELECT 1 FROM live_releases") == []
        # Nothing of it is left to work on: a reply is refused, and a desktop connecting again no longer lists it.
        refused = await desktop.command({"type": "reply", "conversation_id": conversation, "text": "hi"}, "error")
        assert refused["error"]["code"] == "not_found"
        await desktop.close()
        again = await agents_side.http.ws_connect(f"{agents_side.base_url}/api/v1/agents/ws?token={agent['token']}")
        try:
            hello = json.loads((await again.receive()).data)
            assert [held["id"] for held in hello["conversations"]] == []
        finally:
            await again.close()


async def test_what_an_erasure_left_in_live_state_when_its_process_died_is_released_by_a_router(
    service: RunningService,
) -> None:
    """The erasure committed, and its process died before touching Redis: the agent still counts as busy with the
    closed conversation. The row the erasure wrote (`live_releases`) is found by a router's sweep, which frees the
    agent and tells it."""
    await service.create_queue("sales", ["sms"])
    desktop = await service.available_agent("Ann", ("sales",))
    await service.post_sms(sender=DANA, body="please erase me")
    offer = await desktop.receive("offer")
    dana, conversation = offer["card"]["client"]["id"], offer["reservation"]["conversation_id"]
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    await service.post_sms(sender=DANA_AGAIN, body="waiting behind")

    services = service.services
    await Privacy(services.pool).erase(uuid.UUID(dana), actor="admin")  # the database's part, and no more
    status = await services.live.agent_status(uuid.UUID(desktop.agent_id))
    assert status.load == 1, "the database alone frees nobody"
    [left] = await _sql(service, "SELECT conversation_id, agent_id FROM live_releases")
    assert (str(left["conversation_id"]), str(left["agent_id"])) == (conversation, desktop.agent_id)

    sweep = LiveReleases(PendingReleases(services.pool), services.live, services.notices, overdue_seconds=0)
    await sweep.sweep()
    closed = await desktop.receive("closed")
    assert (closed["conversation_id"], closed["reason"]) == (conversation, "erased")
    assert (await desktop.receive("offer"))["reservation"]["interaction"]["body"] == "waiting behind"
    assert await _sql(service, "SELECT 1 FROM live_releases") == []
    await sweep.sweep()  # nothing left: nothing told twice
    await desktop.close()


async def test_a_call_in_progress_on_an_erased_card_stays_up_and_occupies_its_agent_until_it_ends(
    service: RunningService, fake_twilio: FakeTwilioApi
) -> None:
    """Decided: the erasure closes the call's conversation and tells the agent (`closed`), but does not hang up
    (the caller may be asking for the erasure on that very call): the call occupies the agent on every channel
    until its final status, as every call does, and its record keeps no caller number."""
    queue = await service.create_queue("service", ["voice", "sms"])
    await put_menu(service, MENU)
    desktop = await service.available_agent("Cy", ("service",))
    sid = "CA" + uuid.uuid4().hex
    await call_to_queue(service, sid, "2")
    offer = await desktop.receive("offer")
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    live, agent = service.services.live, uuid.UUID(desktop.agent_id)
    async with asyncio.timeout(10):
        while (await live.agent_line(agent)).call_sid != sid:
            await asyncio.sleep(0.05)
    connected = list(fake_twilio.calls)

    status, _ = await _call(service, "DELETE", f"/api/v1/clients/{offer['card']['client']['id']}")
    assert status == 200
    closed = await desktop.receive("closed")
    assert (closed["conversation_id"], closed["reason"]) == (offer["reservation"]["conversation_id"], "erased")
    assert fake_twilio.calls == connected, "the call was not touched at Twilio"
    assert (await live.agent_line(agent)).call_sid == sid and (await live.agent_status(agent)).load == 0
    [row] = await _sql(service, "SELECT from_number FROM voice_calls WHERE call_sid = $1", sid)
    assert row["from_number"] == ""

    # Another contact waits for the agent while the call goes on, and is offered once it ends.
    await service.post_sms(sender=DANA_AGAIN, body="waiting for Cy")
    async with asyncio.timeout(10):
        while await live.queue_length(uuid.UUID(queue["id"])) != 1:
            await asyncio.sleep(0.05)
    await call(service, f"{VOICE}/status", sid, status="completed", CallDuration="42")
    assert (await desktop.receive("offer"))["reservation"]["interaction"]["body"] == "waiting for Cy"
    [row] = await _sql(service, "SELECT from_number, status FROM voice_calls WHERE call_sid = $1", sid)
    assert (row["from_number"], row["status"]) == ("", "completed")
    await desktop.close()


async def test_a_chat_visitor_still_connected_when_its_card_is_erased_writes_on_as_a_stranger(
    service: RunningService,
) -> None:
    """Decided: the visitor's socket stays open and it is told nothing (its next frame is the ack of what it writes
    next); the agent is told (`closed`). What the visitor writes next is a contact received after the erasure: a
    new card's, nothing of the erased one in it."""
    await service.create_queue("web", ["chat"])
    desktop = await service.available_agent("Bo", ("web",))
    visitor = ChatVisitor(service.http, service.base_url)
    await visitor.connect()
    await visitor.send({"type": "identify", "name": "Dana", "email": "dana@example.com"})
    await visitor.receive("identified")
    await visitor.say("I am Dana: erase what you hold about me")
    offer = await desktop.receive("offer")
    erased = offer["card"]["client"]["id"]
    await desktop.command({"type": "accept", "reservation_id": offer["reservation"]["id"]}, "accepted")
    assert (await desktop.receive("claims"))["name"] == "Dana"
    assert (await visitor.receive("agent"))["activity"] == "joined"

    status, _ = await _call(service, "DELETE", f"/api/v1/clients/{erased}")
    assert status == 200
    assert (await desktop.receive("closed"))["reason"] == "erased"
    await visitor.say("are you still there?")
    offer = await desktop.receive("offer")
    card = offer["card"]
    assert card["client"]["id"] != erased
    assert [entry["body"] for entry in card["timeline"]] == ["are you still there?"]
    assert card["claims"] == [] and card["possible_matches"] == []
    status, before = await _call(service, "GET", f"/api/v1/clients/{erased}")
    assert status == 200 and [entry["body"] for entry in before["timeline"]] == [""]
    await visitor.close()
    await desktop.close()


async def test_a_contact_in_flight_on_the_bus_when_its_card_is_erased_brings_nothing_back(
    service_settings: Settings,
) -> None:
    """Published before the erasure, consumed after it (no router was running): recorded emptied on the erased
    card, in a closed conversation; the number is no one's identity again; nobody is offered it."""
    async with run_service(service_settings, Role.API) as api:
        await api.create_queue("sales", ["sms"])
        async with run_service(service_settings, Role.ROUTER):
            await api.post_sms(sender=DANA, body="first")
            dana = (await _card_of(api, DANA))["client"]["id"]
        # The router is gone; a contact is accepted and waits on the bus.
        in_flight = Interaction(
            channel=Channel.SMS,
            provider_id="SM-in-flight-at-erasure",
            from_address=DANA,
            sender_kind=IdentityKind.PHONE,
            from_verified=True,
            body="my card number is 4111 1111 1111 1111",
            received_at=datetime.now(UTC),
        )
        bus, topology = api.services.bus, api.services.topology
        message = inbound_message([in_flight])
        await bus.publish(topology.interactions, "interaction.sms.inbound", message, message_id="m", mandatory=True)
        status, _ = await _call(api, "DELETE", f"/api/v1/clients/{dana}")
        assert status == 200

        async with run_service(service_settings, Role.ROUTER):
            async with asyncio.timeout(20):
                while not await _sql(api, "SELECT 1 FROM interactions WHERE provider_id = $1", in_flight.provider_id):
                    await asyncio.sleep(0.05)
        [stored] = await _sql(
            api,
            "SELECT x.client_id, x.body, x.from_address, v.state FROM interactions x "
            "JOIN conversations v ON v.id = x.conversation_id WHERE x.provider_id = $1",
            in_flight.provider_id,
        )
        assert (str(stored["client_id"]), stored["body"], stored["from_address"], stored["state"]) == (
            dana,
            "",
            "",
            "closed",
        )
        assert await _sql(api, "SELECT 1 FROM identities") == []
        status, _ = await _call(api, "GET", "/api/v1/clients/lookup", params={"phone": DANA})
        assert status == 404
        status, card = await _call(api, "GET", f"/api/v1/clients/{dana}")
        assert card["counts"] == {"sms": 2} and [e["body"] for e in card["timeline"]] == ["", ""]
