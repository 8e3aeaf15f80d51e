"""The figures' fold on its own (no I/O): a new day starts new counts but keeps who waits and agents' states; an
offer taken back, even when its news comes first, leaves the agent free; a moved contact counts where it is
answered; a short abandon is left out of the service level; what a viewer may not see is not in its figures."""

from __future__ import annotations

import uuid
from typing import Any

from contactcenter.supervision.figures import DAY_MS, AgentInfo, Figures, QueueInfo

DAY = 1_780_000_000_000 - 1_780_000_000_000 % DAY_MS  # a midnight, UTC
SALES, SERVICE = uuid.uuid4(), uuid.uuid4()
ANN = uuid.uuid4()


def figures() -> Figures:
    made = Figures(short_abandon_seconds=5, default_target_seconds=20, default_goal=0.8)
    made.know(
        [QueueInfo(SALES, "sales", 20, 0.8), QueueInfo(SERVICE, "service", 60, 0.5)],
        [AgentInfo(ANN, "Ann", frozenset({SALES}))],
    )
    return made


def routed(f: Figures, at_ms: int, queue: uuid.UUID = SALES) -> dict[str, Any]:
    ids = {"interaction_id": str(uuid.uuid4()), "conversation_id": str(uuid.uuid4())}
    f.apply(0, "interaction.routed", at_ms, {**ids, "queue_id": str(queue)})
    return ids


def queue_of(f: Figures, now_ms: int, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(q for q in f.snapshot(now_ms)["queues"] if q["name"] == name)
    return found


def test_a_new_day_starts_new_counts_and_keeps_who_waits() -> None:
    f = figures()
    routed(f, DAY + 1000)
    answered = routed(f, DAY + 2000)
    f.apply(0, "interaction.answered", DAY + 3000, {**answered, "queue_id": str(SALES), "agent_id": str(ANN)})
    assert queue_of(f, DAY + 4000, "sales")["offered"] == 2
    assert f.roll_to(DAY + DAY_MS + 1)
    tomorrow = queue_of(f, DAY + DAY_MS + 1000, "sales")
    assert (tomorrow["offered"], tomorrow["answered"], tomorrow["waiting"]) == (0, 0, 1)
    assert tomorrow["longest_wait_seconds"] == round((DAY_MS + 1000 - 1000) / 1000, 1)


def test_an_offer_taken_back_leaves_the_agent_free_even_when_its_news_comes_first() -> None:
    f = figures()
    f.apply(0, "agent.state_changed", DAY + 1, {"agent_id": str(ANN), "state": "available", "previous": "offline"})
    contact = routed(f, DAY + 10)
    reservation = str(uuid.uuid4())
    offer = {**contact, "queue_id": str(SALES), "agent_id": str(ANN), "reservation_id": reservation}
    f.apply(0, "reservation.revoked", DAY + 30, offer)  # another entity's order: before the offer itself
    f.apply(0, "interaction.offered", DAY + 20, offer)
    agents = f.snapshot(DAY + 40)["agents"]
    assert (agents[0]["state"], agents[0]["offered"]) == ("available", [])


def test_a_moved_contact_counts_where_it_is_answered_and_a_short_abandon_is_left_out() -> None:
    f = figures()
    moved = routed(f, DAY + 1000)
    f.apply(0, "interaction.moved", DAY + 2000, {**moved, "queue_id": str(SERVICE), "previous_queue_id": str(SALES)})
    assert (queue_of(f, DAY + 2500, "sales")["waiting"], queue_of(f, DAY + 2500, "service")["waiting"]) == (0, 1)
    f.apply(0, "interaction.answered", DAY + 41_000, {**moved, "queue_id": str(SERVICE), "agent_id": str(ANN)})
    short = routed(f, DAY + 50_000)
    f.apply(0, "interaction.abandoned", DAY + 52_000, {**short, "queue_id": str(SALES)})
    late = routed(f, DAY + 60_000)
    f.apply(0, "interaction.abandoned", DAY + 90_000, {**late, "queue_id": str(SALES)})
    sales, service = queue_of(f, DAY + 100_000, "sales"), queue_of(f, DAY + 100_000, "service")
    assert (sales["offered"], sales["answered"], service["answered"]) == (3, 0, 1)
    assert service["service_level"] == 1.0 and service["asa_seconds"] == 40.0  # 40 s within service's 60 s
    assert (sales["abandoned"], sales["short_abandoned"], sales["abandoned_after_target"]) == (2, 1, 1)
    assert sales["service_level"] == 0.0 and sales["alert"]


def test_a_viewer_sees_only_its_queues_and_their_agents() -> None:
    f = figures()
    routed(f, DAY + 1, SERVICE)
    seen = f.snapshot(DAY + 2, frozenset({SERVICE}))
    assert [q["name"] for q in seen["queues"]] == ["service"]
    assert seen["agents"] == []  # Ann works sales only
    assert seen["overall"]["waiting"] == 1


def test_an_event_of_the_wrong_shape_changes_nothing() -> None:
    f = figures()
    shapes: list[dict[str, Any]] = [
        {},
        {"interaction_id": "not a uuid", "conversation_id": 3, "queue_id": None},
        {"agent_id": []},
    ]
    for data in shapes:
        for kind in ("interaction.routed", "interaction.answered", "agent.state_changed", "interaction.offered"):
            f.apply(0, kind, DAY + 1, data)
    assert f.snapshot(DAY + 2)["overall"]["offered"] == 0


def test_an_agent_on_a_call_shows_busy_until_the_call_no_longer_occupies_it_even_in_wrap_up() -> None:
    f = figures()
    agent, call = {"agent_id": str(ANN)}, {"agent_id": str(ANN), "call_sid": "CA1"}
    f.apply(0, "agent.state_changed", DAY + 1, {**agent, "state": "available", "previous": "offline"})
    f.apply(0, "agent.call_started", DAY + 10, call)
    (shown,) = f.snapshot(DAY + 20)["agents"]
    assert (shown["state"], shown["call"], shown["call_since"]) == ("busy", "CA1", "2026-05-28T00:00:00.010000Z")
    assert f.snapshot(DAY + 20)["overall"]["agents"]["busy"] == 1
    f.apply(0, "agent.state_changed", DAY + 30, {**agent, "state": "wrap_up", "previous": "available"})
    assert f.snapshot(DAY + 40)["agents"][0]["state"] == "busy", "the call still occupies it"
    f.apply(0, "agent.call_ended", DAY + 50, {**agent, "call_sid": "CA0"})  # an older call's end: not this one
    assert f.snapshot(DAY + 60)["agents"][0]["state"] == "busy"
    f.apply(0, "agent.call_ended", DAY + 70, call)
    (shown,) = f.snapshot(DAY + 80)["agents"]
    assert (shown["state"], shown["call"]) == ("wrap_up", None)
    assert f.snapshot(DAY + 80)["overall"]["agents"]["wrap_up"] == 1
