"""A known day of events, replayed: every live figure (the watch's fold) equals what PostgreSQL computes from the
event log (the history's SQL, per day and per 15-minute interval), and both equal the figures worked out by hand
from the formulas of docs/supervisors.md."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from contactcenter.store import open_pool
from contactcenter.store.directory import Directory
from contactcenter.store.migrate import migrate
from contactcenter.supervision.figures import FOLDED_TYPES, AgentInfo, Figures, QueueInfo
from contactcenter.supervision.history import as_csv, history
from contactcenter.supervision.watch import REPLAY, row_of
from schema import QueueCreate
from tests.conftest import DATABASE_URL

DAY = datetime(2026, 3, 10, tzinfo=UTC)
SHORT_ABANDON_SECONDS = 5.0


def at(hh: int, mm: int, ss: int = 0, *, day: datetime = DAY) -> datetime:
    return day + timedelta(hours=hh, minutes=mm, seconds=ss)


@pytest.fixture
async def pool(database_schema: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await open_pool(DATABASE_URL, schema=database_schema)
    await migrate(opened)
    yield opened
    await opened.close()


class Day:
    """Writes a day's events into the log, stamped and published as the relay leaves them."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, datetime, dict[str, str]]] = []

    def add(self, event_type: str, when: datetime, **data: Any) -> None:
        self.rows.append((event_type, when, {k: str(v) for k, v in data.items()}))

    def contact(
        self,
        queue: uuid.UUID,
        routed: datetime,
        *,
        channel: str = "sms",
        agent: uuid.UUID | None = None,
        answered: datetime | None = None,
        completed: datetime | None = None,
        abandoned: datetime | None = None,
        moved: tuple[datetime, uuid.UUID] | None = None,
    ) -> uuid.UUID:
        interaction, conversation = uuid.uuid4(), uuid.uuid4()
        ids = {"interaction_id": interaction, "conversation_id": conversation}
        self.add("conversation.opened", routed, conversation_id=conversation, channel=channel, queue_id=queue)
        self.add("interaction.routed", routed, **ids, queue_id=queue)
        if moved:
            self.add("interaction.moved", moved[0], **ids, queue_id=moved[1], previous_queue_id=queue)
            queue = moved[1]
        if answered and agent:
            reservation = uuid.uuid4()
            self.add("interaction.offered", answered, **ids, queue_id=queue, agent_id=agent, reservation_id=reservation)
            self.add("interaction.answered", answered, **ids, queue_id=queue, agent_id=agent)
        if completed and agent:
            self.add("interaction.completed", completed, **ids, queue_id=queue, agent_id=agent)
        if abandoned:
            self.add("interaction.abandoned", abandoned, **ids, queue_id=queue)
        return interaction

    async def write(self, pool: asyncpg.Pool) -> None:
        ordered = sorted(self.rows, key=lambda row: row[1])
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO events (id, type, subject, partition_key, occurred_at, data)"
                " VALUES ($1, $2, 's', 'p', $3, $4::jsonb)",
                [(n, t, when, data) for n, (t, when, data) in enumerate(ordered, start=1)],
            )


async def test_a_known_day_replayed_gives_the_figures_postgresql_computes_and_those_worked_by_hand(
    pool: asyncpg.Pool,
) -> None:
    directory = Directory(pool)
    sales = (await directory.create_queue(QueueCreate(name="sales", channels=["sms"], service_level_seconds=20))).id
    service = (
        await directory.create_queue(QueueCreate(name="service", channels=["email"], service_level_seconds=60))
    ).id
    ann, bob = uuid.uuid4(), uuid.uuid4()
    day = Day()
    day.add("agent.state_changed", at(8, 55), agent_id=ann, state="available", previous="offline")
    day.add("agent.state_changed", at(8, 56), agent_id=bob, state="available", previous="offline")
    # sales (target 20 s): answered in 10 s, in 30 s (late), in 5 s; abandoned after 3 s (short) and 40 s (late).
    day.contact(sales, at(9, 0), agent=ann, answered=at(9, 0, 10), completed=at(9, 5, 10))
    day.contact(sales, at(9, 1), agent=bob, answered=at(9, 1, 30), completed=at(9, 3, 30))
    day.contact(sales, at(9, 20), abandoned=at(9, 20, 3))
    day.contact(sales, at(9, 20), abandoned=at(9, 20, 40))
    day.contact(sales, at(10, 0), channel="chat", agent=ann, answered=at(10, 0, 5), completed=at(10, 10, 5))
    # Routed the evening before, answered after midnight: answered today, not offered today.
    day.contact(sales, at(23, 59, 40, day=DAY - timedelta(days=1)), agent=bob, answered=at(0, 0, 30))
    # Moved from sales to service (target 60 s) and answered there after 50 s; one still waiting in service.
    day.contact(sales, at(9, 0), channel="email", agent=bob, answered=at(9, 0, 50), completed=at(9, 2, 50),
                moved=(at(9, 0, 10), service))  # fmt: skip
    day.contact(service, at(11, 0), channel="email")
    # Answered in sales by Ann after 10 s, transferred by her to service, answered there by Bob, completed by him:
    # offered and answered in sales (its first routing and answer), completed in service (its handle time from the
    # first answer), handled by Bob.
    ids = {"interaction_id": uuid.uuid4(), "conversation_id": uuid.uuid4()}
    day.add("conversation.opened", at(13, 0), conversation_id=ids["conversation_id"], channel="sms", queue_id=sales)
    day.add("interaction.routed", at(13, 0), **ids, queue_id=sales)
    day.add("interaction.answered", at(13, 0, 10), **ids, queue_id=sales, agent_id=ann)
    day.add("interaction.transferred", at(13, 2, 10), **ids, queue_id=service, previous_queue_id=sales, agent_id=ann)
    day.add("interaction.answered", at(13, 2, 40), **ids, queue_id=service, agent_id=bob)
    day.add("interaction.completed", at(13, 7, 40), **ids, queue_id=service, agent_id=bob)
    day.add("agent.state_changed", at(12, 0), agent_id=ann, state="away", previous="available")
    await day.write(pool)

    figures = Figures(short_abandon_seconds=SHORT_ABANDON_SECONDS, default_target_seconds=20, default_goal=0.8)
    targets = await directory.queue_targets()
    figures.know(
        [QueueInfo(t.id, t.name, t.seconds, t.goal) for t in targets],
        [AgentInfo(ann, "Ann", frozenset({sales})), AgentInfo(bob, "Bob", frozenset({sales, service}))],
    )
    for row in await pool.fetch(REPLAY, DAY - timedelta(days=1), 2**63 - 1, FOLDED_TYPES):
        figures.apply(*row_of(row))
    end_of_day_ms = int((DAY + timedelta(hours=23, minutes=59)).timestamp() * 1000)
    live = figures.snapshot(end_of_day_ms)
    by_name = {q["name"]: q for q in live["queues"]}

    # By hand, from the formulas.
    assert {k: by_name["sales"][k] for k in ("offered", "answered", "answered_within_target", "abandoned")} == {
        "offered": 7,  # six today, and the one moved to service, offered to sales
        "answered": 5,  # 10 s, 30 s, 5 s, the overnight one (50 s), the transferred one (10 s)
        "answered_within_target": 3,
        "abandoned": 2,
    }
    assert by_name["sales"]["short_abandoned"] == 1 and by_name["sales"]["abandoned_after_target"] == 1
    assert by_name["sales"]["service_level"] == round(3 / (5 + 1), 4)
    assert by_name["sales"]["asa_seconds"] == round((10 + 30 + 5 + 50 + 10) / 5, 3)
    assert by_name["sales"]["aht_seconds"] == round((300 + 120 + 600) / 3, 3)
    assert by_name["sales"]["channels"]["chat"]["answered"] == 1
    assert (by_name["service"]["offered"], by_name["service"]["answered"], by_name["service"]["waiting"]) == (1, 1, 1)
    assert by_name["service"]["completed"] == 2  # the moved one, and the transferred one
    assert by_name["service"]["service_level"] == 1.0 and by_name["service"]["aht_seconds"] == (120 + 450) / 2
    assert live["overall"]["waiting"] == 1 and live["overall"]["answered"] == 6
    agents = {a["name"]: a for a in live["agents"]}
    assert (agents["Ann"]["state"], agents["Ann"]["handled_today"]) == ("away", 2)
    assert (agents["Bob"]["state"], agents["Bob"]["handled_today"]) == ("busy", 3)  # the overnight one is open

    # What PostgreSQL computes from the log, per day and per interval.
    per_day = await history(
        pool, DAY, DAY + timedelta(days=1), "day", short_abandon_seconds=SHORT_ABANDON_SECONDS, queue_ids=None
    )
    figure_names = [name for name in per_day[0].counts.figures() if name != "completed"] + ["completed"]
    for day_row in per_day:
        assert day_row.start == DAY
        got = day_row.counts.figures()
        assert {k: got[k] for k in figure_names} == {k: by_name[day_row.queue][k] for k in figure_names}
    assert {day_row.queue for day_row in per_day} == {"sales", "service"}
    per_interval = await history(
        pool, DAY, DAY + timedelta(days=1), "15m", short_abandon_seconds=SHORT_ABANDON_SECONDS, queue_ids=None
    )
    for queue_id, name in ((sales, "sales"), (service, "service")):
        live_intervals = {i["start"]: i for i in figures.snapshot(end_of_day_ms, frozenset({queue_id}))["intervals"]}
        sql_intervals = {r.as_dict()["start"]: r.counts.figures() for r in per_interval if r.queue == name}
        assert set(live_intervals) == set(sql_intervals)
        for start, counts in sql_intervals.items():
            assert {k: live_intervals[start][k] for k in counts} == counts, start
    # Agents' handled today and waiting, straight from the log.
    handled = {
        row["agent"]: row["n"]
        for row in await pool.fetch(
            "SELECT data->>'agent_id' AS agent, count(*) AS n FROM events WHERE type = 'interaction.completed'"
            " AND occurred_at >= $1 GROUP BY 1",
            DAY,
        )
    }
    assert handled == {str(ann): agents["Ann"]["handled_today"], str(bob): agents["Bob"]["handled_today"]}
    waiting = await pool.fetchval(
        "SELECT count(*) FROM events r WHERE r.type = 'interaction.routed' AND NOT EXISTS (SELECT 1 FROM events o"
        " WHERE o.type IN ('interaction.answered', 'interaction.abandoned') AND o.data->>'interaction_id' ="
        " r.data->>'interaction_id')"
    )
    assert waiting == live["overall"]["waiting"]

    csv_text = as_csv(per_day)
    assert csv_text.splitlines()[0].startswith("start,queue,offered,answered")
    assert "2026-03-10T00:00:00Z,sales,7,5,3,2,1,1,3,0.5,21.0,340.0" in csv_text.splitlines()
