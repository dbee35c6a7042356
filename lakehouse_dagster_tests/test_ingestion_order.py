"""The latest row per key by (date, ingestion order) as a hash aggregate, against a sort in pandas."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.order import (
    INGESTION_ORDER,
    date_then_ordinal,
    latest_per_key,
    with_ingestion_ordinal,
)

SCHEMA = (
    "key BIGINT, day DATE, _batch_id STRING, _source_file_modified_at TIMESTAMP, "
    "_source_file STRING, _source_row BIGINT"
)


def random_bronze(seed: int) -> list[tuple]:
    """Rows of several files in several batches: shared mtimes, files named alike in two
    batches (a replaced file), null keys and dates, and many ties on the date."""
    rng = random.Random(seed)
    rows = []
    for batch in ("b-0001", "b-0002", "b-0010"):
        for file in rng.sample(["a.csv", "b.csv", "z/c.csv", "ä.csv"], 3):
            modified = datetime(2026, 11, 1) + timedelta(seconds=rng.choice([0, 0, 5]))
            for line in range(2, rng.randint(3, 40)):
                key = rng.choice([None, *range(12)])
                day = rng.choice(
                    [None, date(2026, 1, 1), date(2026, 1, 2), date(1, 1, 1), date(9999, 12, 31)]
                )
                rows.append((key, day, batch, modified, file, line))
    return rows


def expected_latest(rows: list[tuple]) -> set[tuple]:
    """Newest by day (null oldest), then by batch, mtime, file and line: a sort."""
    frame = pd.DataFrame(rows, columns=["key", "day", *INGESTION_ORDER]).dropna(subset=["key"])
    frame["has_day"] = frame["day"].notna()
    frame["day_value"] = frame["day"].map(lambda d: d or date.min)
    ordered = frame.sort_values(["key", "has_day", "day_value", *INGESTION_ORDER])
    latest = ordered.groupby("key").tail(1)
    return {(int(r.key), r._5, int(r._6)) for r in latest.itertuples()}


@pytest.mark.parametrize("seed", range(4))
def test_the_latest_row_per_key_is_the_last_in_date_then_ingestion_order(spark, seed) -> None:
    rows = random_bronze(seed)
    frame = with_ingestion_ordinal(spark.createDataFrame(rows, SCHEMA), "_ordinal")
    latest = latest_per_key(frame, "key", date_then_ordinal(F.col("day"), F.col("_ordinal")))
    got = {(r["key"], r["_source_file"], r["_source_row"]) for r in latest.collect()}
    assert got == expected_latest(rows)


def test_ordinals_are_unique_and_follow_ingestion_order(spark) -> None:
    rows = random_bronze(7)
    frame = with_ingestion_ordinal(spark.createDataFrame(rows, SCHEMA), "_ordinal").toPandas()
    assert frame["_ordinal"].is_unique
    by_order = frame.sort_values(list(INGESTION_ORDER))["_ordinal"].tolist()
    assert by_order == sorted(by_order)


def test_an_ordinal_that_would_overflow_fails_the_query(spark) -> None:
    rows = [(1, date(2026, 1, 1), "b", datetime(2026, 1, 1), "huge.csv", 1 << 41)]
    frame = with_ingestion_ordinal(spark.createDataFrame(rows, SCHEMA), "_ordinal")
    with pytest.raises(Exception, match="ingestion ordinal overflows"):
        frame.collect()
