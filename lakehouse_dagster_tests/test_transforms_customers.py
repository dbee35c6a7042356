"""The customers transforms on small DataFrames."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from lakehouse_dagster.domains.customers.transforms import clean_customers, customer_segments

AS_OF = date(2026, 11, 26)
BRONZE_SCHEMA = (
    "customer_id BIGINT, first_name STRING, last_name STRING, email STRING, country STRING, "
    "signup_date DATE, last_activity DATE, _batch_id STRING, _source_file_modified_at TIMESTAMP, "
    "_source_file STRING, _source_row BIGINT"
)
T0 = datetime(2026, 1, 1)


def bronze_row(
    customer_id,
    *,
    email="a@x.com",
    last_activity=date(2026, 11, 1),
    batch="b1",
    file="f1",
    row=2,
    first_name="Ann",
    country="us",
    signup=date(2025, 1, 1),
):
    return (customer_id, first_name, "Lee", email, country, signup, last_activity, batch, T0, file, row)


def silver(spark, rows, as_of=AS_OF, schema=BRONZE_SCHEMA):
    frame = clean_customers(spark.createDataFrame(rows, schema), as_of)
    return {row["customer_id"]: row.asDict() for row in frame.collect()}


def test_text_is_trimmed_emails_lowered_and_empty_becomes_null(spark) -> None:
    result = silver(spark, [bronze_row(1, email="  Ann.Lee@Example.COM ", first_name="  ", country=" gb ")])

    assert result[1]["email"] == "ann.lee@example.com"
    assert result[1]["first_name"] is None
    assert result[1]["country"] == "GB"


def test_text_is_stripped_of_whatever_python_calls_whitespace(spark) -> None:
    """Tabs, line breaks, no-break and ideographic spaces at either end; inside, they stay."""
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    values = [f"{space}a{space}b{space}" for space in spaces] + [space * 2 for space in spaces]
    rows = [bronze_row(i, first_name=value) for i, value in enumerate(values, start=1)]

    result = silver(spark, rows)

    assert len(spaces) > 20
    assert {i: result[i]["first_name"] for i in result} == {
        i: value.strip() or None for i, value in enumerate(values, start=1)
    }


def test_rows_without_customer_id_are_left_out(spark) -> None:
    assert set(silver(spark, [bronze_row(None), bronze_row(2)])) == {2}


def test_latest_record_by_last_activity_wins(spark) -> None:
    result = silver(
        spark,
        [
            bronze_row(1, email="new@x.com", last_activity=date(2026, 11, 20), batch="b1"),
            bronze_row(1, email="old@x.com", last_activity=date(2026, 10, 1), batch="b2"),
        ],
    )
    assert result[1]["email"] == "new@x.com"


def test_equal_activity_falls_back_to_ingestion_order(spark) -> None:
    same_day = date(2026, 11, 20)
    result = silver(
        spark,
        [
            bronze_row(1, email="batch2@x.com", last_activity=same_day, batch="b2", row=2),
            bronze_row(1, email="batch1-late-line@x.com", last_activity=same_day, batch="b1", row=9),
            bronze_row(2, email="line2@x.com", last_activity=same_day, batch="b1", row=2),
            bronze_row(2, email="line3@x.com", last_activity=same_day, batch="b1", row=3),
        ],
    )
    assert (result[1]["email"], result[2]["email"]) == ("batch2@x.com", "line3@x.com")


def test_a_record_with_unknown_activity_does_not_hide_a_dated_one(spark) -> None:
    result = silver(
        spark,
        [
            bronze_row(1, email="dated@x.com", last_activity=date(2026, 1, 1), batch="b1"),
            bronze_row(1, email="undated@x.com", last_activity=None, batch="b2"),
        ],
    )
    assert result[1]["email"] == "dated@x.com"


@pytest.mark.parametrize(
    ("days", "segment"), [(0, "active"), (30, "active"), (31, "recent"), (90, "recent"), (91, "inactive")]
)
def test_segment_boundaries_count_from_the_as_of_date(spark, days, segment) -> None:
    activity = date.fromordinal(AS_OF.toordinal() - days)

    row = silver(spark, [bronze_row(1, last_activity=activity)])[1]

    assert (row["days_since_activity"], row["customer_segment"]) == (days, segment)


def test_unknown_activity_is_inactive(spark) -> None:
    row = silver(spark, [bronze_row(1, last_activity=None)])[1]
    assert (row["days_since_activity"], row["customer_segment"]) == (None, "inactive")


def test_as_of_date_moves_the_segment_not_the_clock(spark) -> None:
    rows = [bronze_row(1, last_activity=date(2026, 1, 10))]
    assert silver(spark, rows, as_of=date(2026, 1, 20))[1]["customer_segment"] == "active"
    assert silver(spark, rows, as_of=date(2026, 6, 1))[1]["customer_segment"] == "inactive"


def test_string_typed_bronze_and_a_later_loyalty_tier_column_are_handled(spark) -> None:
    schema = (
        BRONZE_SCHEMA.replace("customer_id BIGINT", "customer_id STRING").replace(
            "last_activity DATE", "last_activity STRING"
        )
        + ", loyalty_tier STRING"
    )
    rows = [("7", "A", "B", "a@x", "us", date(2025, 1, 1), "2026-11-01", "b", T0, "f", 2, " Gold ")]

    row = silver(spark, rows, schema=schema)[7]

    assert (row["last_activity"], row["loyalty_tier"]) == (date(2026, 11, 1), "gold")


def test_segments_count_share_and_average_per_segment_and_country(spark) -> None:
    frame = spark.createDataFrame(
        [
            (1, "US", 10, "active"),
            (2, "US", 20, "active"),
            (3, None, 100, "inactive"),
            (4, "GB", 40, "recent"),
        ],
        "customer_id BIGINT, country STRING, days_since_activity INT, customer_segment STRING",
    )

    result = {(r["customer_segment"], r["country"]): r.asDict() for r in customer_segments(frame).collect()}

    assert set(result) == {("active", "US"), ("inactive", "UNKNOWN"), ("recent", "GB")}
    assert result[("active", "US")]["customers"] == 2
    assert result[("active", "US")]["share_of_customers"] == pytest.approx(0.5)
    assert result[("active", "US")]["avg_days_since_activity"] == pytest.approx(15.0)
    assert sum(r["share_of_customers"] for r in result.values()) == pytest.approx(1.0)
