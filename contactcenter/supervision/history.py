"""The supervisors' figures over time, per queue and per 15-minute interval or day, computed by PostgreSQL from
the event log — the same formulas as the live figures (`figures.Counts`), so a day replayed live and the day
read here agree (tests/e2e/test_supervisor_figures.py holds them equal). Read on demand: history is not live."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from contactcenter.supervision.figures import Counts

# Each contact's facts in [$1, $2): its routing (offered), first answer, abandon (before any answer) and
# completion, with the waits and handle times they close. A contact routed the day before still counts its
# outcome today. Waits in whole milliseconds, as the live figures count them.
FACTS = """
WITH routed AS (
    SELECT DISTINCT ON (data->>'interaction_id')
           data->>'interaction_id' AS iid, (data->>'queue_id')::uuid AS queue_id, occurred_at
    FROM events
    WHERE type = 'interaction.routed'
      AND occurred_at >= $1::timestamptz - interval '1 day' AND occurred_at < $2::timestamptz
    ORDER BY data->>'interaction_id', seq
), firsts AS (
    SELECT DISTINCT ON (type, data->>'interaction_id')
           type, data->>'interaction_id' AS iid, (data->>'queue_id')::uuid AS queue_id, occurred_at
    FROM events
    WHERE type IN ('interaction.answered', 'interaction.abandoned', 'interaction.completed')
      AND occurred_at >= $1::timestamptz - interval '1 day' AND occurred_at < $2::timestamptz
    ORDER BY type, data->>'interaction_id', seq
), facts AS (
    SELECT 'routed' AS kind, r.queue_id, r.occurred_at AS at, NULL::bigint AS wait_ms, NULL::bigint AS handle_ms
    FROM routed r WHERE r.occurred_at >= $1
    UNION ALL
    SELECT 'answered', coalesce(f.queue_id, r.queue_id), f.occurred_at,
           round(extract(epoch FROM f.occurred_at - r.occurred_at) * 1000)::bigint, NULL
    FROM firsts f JOIN routed r USING (iid)
    WHERE f.type = 'interaction.answered' AND f.occurred_at >= $1
    UNION ALL
    SELECT 'abandoned', coalesce(f.queue_id, r.queue_id), f.occurred_at,
           round(extract(epoch FROM f.occurred_at - r.occurred_at) * 1000)::bigint, NULL
    FROM firsts f JOIN routed r USING (iid)
    LEFT JOIN firsts a ON a.type = 'interaction.answered' AND a.iid = f.iid AND a.occurred_at <= f.occurred_at
    WHERE f.type = 'interaction.abandoned' AND f.occurred_at >= $1 AND a.iid IS NULL
    UNION ALL
    SELECT 'completed', coalesce(f.queue_id, r.queue_id), f.occurred_at, NULL,
           round(extract(epoch FROM f.occurred_at - a.occurred_at) * 1000)::bigint
    FROM firsts f JOIN routed r USING (iid)
    JOIN firsts a ON a.type = 'interaction.answered' AND a.iid = f.iid
    WHERE f.type = 'interaction.completed' AND f.occurred_at >= $1
)
SELECT date_bin($3::interval, f.at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS start, q.id AS queue_id,
       q.name AS queue,
       count(*) FILTER (WHERE kind = 'routed') AS offered,
       count(*) FILTER (WHERE kind = 'answered') AS answered,
       count(*) FILTER (WHERE kind = 'answered' AND wait_ms <= q.service_level_seconds * 1000)
           AS answered_within_target,
       count(*) FILTER (WHERE kind = 'abandoned') AS abandoned,
       count(*) FILTER (WHERE kind = 'abandoned' AND wait_ms < $4::bigint) AS short_abandoned,
       count(*) FILTER (WHERE kind = 'abandoned' AND wait_ms >= $4 AND wait_ms > q.service_level_seconds * 1000)
           AS abandoned_after_target,
       coalesce(sum(wait_ms) FILTER (WHERE kind = 'answered'), 0) AS answer_wait_ms,
       count(*) FILTER (WHERE kind = 'completed') AS completed,
       coalesce(sum(handle_ms) FILTER (WHERE kind = 'completed'), 0) AS handle_ms
FROM facts f JOIN queues q ON q.id = f.queue_id
WHERE q.id = ANY($5::uuid[]) OR $5::uuid[] IS NULL
GROUP BY 1, 2, 3
ORDER BY 1, 3
"""
INTERVALS = {"15m": timedelta(minutes=15), "day": timedelta(days=1)}
# The longest span one request reads: a quarter's days, or a month of 15-minute intervals.
MAX_DAYS = {"15m": 31, "day": 92}
COLUMNS = (
    "start",
    "queue",
    "offered",
    "answered",
    "answered_within_target",
    "abandoned",
    "short_abandoned",
    "abandoned_after_target",
    "completed",
    "service_level",
    "asa_seconds",
    "aht_seconds",
)


@dataclass(frozen=True)
class HistoryRow:
    start: datetime
    queue_id: uuid.UUID
    queue: str
    counts: Counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "queue": self.queue,
            "queue_id": str(self.queue_id),
            **self.counts.figures(),
        }


async def history(
    pool: asyncpg.Pool,
    start: datetime,
    end: datetime,
    interval: str,
    *,
    short_abandon_seconds: float,
    queue_ids: frozenset[uuid.UUID] | None,
) -> list[HistoryRow]:
    rows = await pool.fetch(
        FACTS,
        start,
        end,
        INTERVALS[interval],
        int(short_abandon_seconds * 1000),
        list(queue_ids) if queue_ids is not None else None,
    )
    return [
        HistoryRow(
            row["start"],
            row["queue_id"],
            row["queue"],
            Counts(**{name: int(row[name]) for name in Counts.__dataclass_fields__}),
        )
        for row in rows
    ]


def as_csv(rows: list[HistoryRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.as_dict().items()})
    return out.getvalue()
