"""``matching`` is a left semi join: the same rows, once each, whatever the keys side holds."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from lakehouse_dagster.joins import matching

ROWS_SCHEMA = "`odd key` STRING, `tick``s` INT, payload STRING, amount DOUBLE"
KEYS_SCHEMA = "`odd key` STRING, `tick``s` INT, other STRING"


def _random_rows(rng: random.Random, count: int) -> list[tuple]:
    def key() -> tuple:
        return (rng.choice(["a", "b", "c", None]), rng.choice([1, 2, None]))

    return [(*key(), f"p{index}", rng.random()) for index in range(count)]


def _expected(rows: list[tuple], keys: list[tuple]) -> list[tuple]:
    """The semi join in plain Python: a row is kept once if a key row equals it (null equals nothing)."""
    wanted = {(first, second) for first, second, _ in keys if first is not None and second is not None}
    return sorted(row for row in rows if (row[0], row[1]) in wanted)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matching_keeps_each_row_with_an_equal_key_once(spark, seed) -> None:
    rng = random.Random(seed)
    rows = _random_rows(rng, 200)
    # Keys repeat (each matching row must still come out once) and hold nulls.
    keys = [(row[0], row[1], f"k{index}") for index, row in enumerate(rng.choices(rows, k=30))]
    keys += [(None, None, "null"), ("z", 9, "absent")]

    result = matching(
        spark.createDataFrame(rows, ROWS_SCHEMA),
        spark.createDataFrame(keys, KEYS_SCHEMA),
        ["odd key", "tick`s"],
    ).toPandas()

    assert list(result.columns) == ["odd key", "tick`s", "payload", "amount"]
    actual = sorted(
        tuple(None if pd.isna(value) else value for value in row)
        for row in result.itertuples(index=False, name=None)
    )
    assert actual == _expected(rows, keys)


def test_matching_nothing_gives_no_rows_with_the_rows_schema(spark) -> None:
    rows = spark.createDataFrame([("a", 1, "p", 1.0)], ROWS_SCHEMA)
    keys = spark.createDataFrame([], KEYS_SCHEMA)
    result = matching(rows, keys, ["odd key", "tick`s"])
    assert result.count() == 0
    assert [(f.name, f.dataType) for f in result.schema] == [(f.name, f.dataType) for f in rows.schema]
