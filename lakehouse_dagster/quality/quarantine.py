"""Quarantine: the rows a table's ``drop`` expectations kept out, in ``quarantine.<table>``.

Each quarantined row keeps its columns and gets ``_failed_expectations`` (the names of the
drop expectations it failed: why it is here; warn and fail ones are counted, not listed),
``_run_id`` and ``_quarantined_at``. Two ways to write, matching the table's own write:

- replace: a table rebuilt from all of its input each run replaces its quarantine too
  (or only the quarantine of the partitions it rewrites), so input rows = table rows +
  quarantined rows;
- add new: a table fed incrementally (CDC) adds the rows it has not quarantined before,
  identified by their source position, so re-applying a batch adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.lake.delta import DateWindow, DeltaTables
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
    tables: DeltaTables,
    target: TableName,
    dropped: DataFrame,
    run_id: str,
    *,
    window: DateWindow | None = None,
) -> None:
    """Replace the quarantine of ``target`` (or its rows in ``window``) with ``dropped``."""
    name = quarantine_table(target)
    if window is not None and tables.exists(name):
        tables.replace_window(name, _stamped(dropped, run_id), window)
    else:
        tables.overwrite(name, _stamped(dropped, run_id))


def add_to_quarantine(
    tables: DeltaTables, target: TableName, dropped: DataFrame, run_id: str, *, identity: Sequence[str]
) -> None:
    """Add the dropped rows whose ``identity`` columns are not in quarantine yet."""
    tables.insert_missing(quarantine_table(target), _stamped(dropped, run_id), identity)
