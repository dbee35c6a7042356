"""Quarantine: the rows a table's ``drop`` expectations kept out, in ``quarantine.<table>``.

Each quarantined row keeps its columns and gets ``_failed_expectations``, ``_run_id`` and
``_quarantined_at``. Two ways to write, matching the table's own write:

- ``replace``: a table rebuilt from all of its input each run replaces its quarantine too
  (optionally only a partition's rows), so input rows = table rows + quarantined rows;
- ``insert_new``: a table fed incrementally (CDC) adds the rows it has not quarantined
  before, identified by their source position, so re-applying a batch adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName

RUN_ID = "_run_id"
QUARANTINED_AT = "_quarantined_at"


def quarantine_table(target: TableName) -> TableName:
    return TableName("quarantine", target.table)


def _stamped(dropped: DataFrame, run_id: str) -> DataFrame:
    return dropped.withColumn(RUN_ID, F.lit(run_id).cast("string")).withColumn(
        QUARANTINED_AT, F.lit(datetime.now(UTC)).cast("timestamp")
    )


def replace_quarantine(
    tables: DeltaTables, target: TableName, dropped: DataFrame, run_id: str, *, predicate: str | None = None
) -> None:
    """Replace the quarantine of ``target`` (or the rows matching ``predicate``) with ``dropped``."""
    name = quarantine_table(target)
    if predicate and tables.exists(name):
        tables.replace_where(name, _stamped(dropped, run_id), predicate)
    else:
        tables.overwrite(name, _stamped(dropped, run_id))


def insert_new_into_quarantine(
    tables: DeltaTables, target: TableName, dropped: DataFrame, run_id: str, *, identity: Sequence[str]
) -> None:
    """Add the dropped rows whose ``identity`` columns are not in quarantine yet."""
    name = quarantine_table(target)
    stamped = _stamped(dropped, run_id)
    if not tables.exists(name):
        tables.overwrite(name, stamped)
        return
    view = f"quarantine_{uuid.uuid4().hex}"
    stamped.createOrReplaceTempView(view)
    on = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in identity)
    try:
        tables.spark.sql(
            f"MERGE INTO {tables.sql_ref(name)} AS t USING {view} AS s ON {on} WHEN NOT MATCHED THEN INSERT *"
        ).collect()
    finally:
        tables.spark.catalog.dropTempView(view)
