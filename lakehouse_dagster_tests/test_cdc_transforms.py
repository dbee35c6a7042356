"""AUTO CDC transforms against a change-at-a-time oracle, on random change streams."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from lakehouse_dagster.cdc.spec import CdcConfig
from lakehouse_dagster.cdc.transforms import END_AT, START_AT, current_state, history
from lakehouse_dagster_tests.oracle import apply_changes_scd1, apply_changes_scd2

SCHEMA = (
    "Op STRING, id BIGINT, email STRING, city STRING, phone STRING, ts TIMESTAMP, _source_file STRING, "
    "_source_row BIGINT"
)
COLUMNS = ("Op", "id", "email", "city", "phone", "ts")
ORDER = ("ts", "_source_file", "_source_row")
T0 = datetime(2026, 11, 1, 9, 0, 0)


def config(scd_type: int = 1, tracked: tuple[str, ...] | None = None) -> CdcConfig:
    return CdcConfig(
        keys=("id",), sequence_by="ts", columns=COLUMNS, scd_type=scd_type, track_history_columns=tracked
    )


def random_changes(rng: random.Random, keys: int = 12, changes: int = 150) -> list[dict]:
    """Random I/U/D streams per key, with duplicated deliveries and ties broken by file position."""
    rows = []
    for position in range(changes):
        key = rng.randrange(keys)
        change = {
            "Op": rng.choice(["I", "U", "U", "U", "D"]),
            "id": key,
            "email": rng.choice(["a@x", "b@x", "c@x"]),
            "city": rng.choice(["Oslo", "Lima"]),
            "phone": rng.choice(["1", "2", "3", None]),
            "ts": T0 + timedelta(minutes=rng.randrange(60)),
            "_source_file": f"f{rng.randrange(4)}.csv",
            "_source_row": position,
        }
        rows.append(change)
        if rng.random() < 0.1:
            rows.append({**change, "_source_file": "redelivered.csv"})  # same change, delivered twice
    rng.shuffle(rows)
    return rows


def as_tuples(rows, columns):
    return sorted((tuple(row[c] for c in columns) for row in rows), key=repr)


@pytest.mark.parametrize("seed", range(4))
def test_current_state_equals_replaying_changes_in_order(spark, seed) -> None:
    changes = random_changes(random.Random(seed))

    result = current_state(spark.createDataFrame(changes, SCHEMA), config()).collect()

    expected = apply_changes_scd1(changes, ("id",), ORDER)
    columns = ("id", "email", "city", "phone", "ts")
    assert as_tuples([r.asDict() for r in result], columns) == as_tuples(expected.values(), columns)


@pytest.mark.parametrize("seed", range(4))
def test_history_equals_replaying_changes_in_order(spark, seed) -> None:
    changes = random_changes(random.Random(100 + seed))
    tracked = ("email", "city")

    result = history(spark.createDataFrame(changes, SCHEMA), config(2, tracked)).collect()

    expected = apply_changes_scd2(changes, ("id",), ORDER, tracked, "ts")
    columns = ("id", "email", "city", "phone", START_AT, END_AT)
    assert len(expected) > 12, "the stream should produce several versions per key"
    assert as_tuples([r.asDict() for r in result], columns) == as_tuples(expected, columns)


def test_an_untracked_change_updates_the_version_in_place_and_a_delete_closes_it(spark) -> None:
    t = [T0 + timedelta(hours=h) for h in range(5)]
    changes = [
        {"Op": "I", "id": 1, "email": "a@x", "city": "Oslo", "phone": "1", "ts": t[0]},
        {"Op": "U", "id": 1, "email": "a@x", "city": "Oslo", "phone": "2", "ts": t[1]},
        {"Op": "U", "id": 1, "email": "b@x", "city": "Oslo", "phone": "2", "ts": t[2]},
        {"Op": "D", "id": 1, "email": "b@x", "city": "Oslo", "phone": "2", "ts": t[3]},
        {"Op": "I", "id": 1, "email": "c@x", "city": "Lima", "phone": "9", "ts": t[4]},
    ]
    rows = [{**c, "_source_file": "f", "_source_row": i} for i, c in enumerate(changes)]

    result = (
        history(spark.createDataFrame(rows, SCHEMA), config(2, ("email", "city"))).orderBy(START_AT).collect()
    )

    assert [(r["email"], r["phone"], r[START_AT], r[END_AT]) for r in result] == [
        ("a@x", "2", t[0], t[2]),
        ("b@x", "2", t[2], t[3]),
        ("c@x", "9", t[4], None),
    ]
