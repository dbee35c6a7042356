"""Partitioned tables written from staged Parquet files (``lake/delta.py``)."""

from __future__ import annotations

from datetime import date

import pytest

from lakehouse_dagster.lake.layout import TableName


@pytest.mark.parametrize(
    ("ddl", "null_row"), [("d DATE, id BIGINT", (None, 1)), ("d STRING, id BIGINT", (None, 1))]
)
def test_a_null_partition_value_is_written_null(tables, ddl: str, null_row: tuple) -> None:
    """The engine's Parquet writer names a null date's folder 1970-01-01: staged partitions
    must not turn a null into a date."""
    name = TableName("silver", "with_nulls")
    value = date(2026, 1, 1) if ddl.startswith("d DATE") else "a/b c%"
    tables.create(name, tables.spark.createDataFrame([null_row, (value, 2)], ddl), partition_by=("d",))
    assert sorted((r.id, r.d) for r in tables.read(name).collect()) == [(1, None), (2, value)]
