"""Quality history: per-expectation results of every materialisation in ``ops.data_quality``.

The equivalent of the quality records of the Delta Live Tables event log: one record per
expectation and run, or per expectation and day for a partitioned write. Query it, for example
the worst expectations of the last 7 days:

    SELECT asset, expectation, SUM(failed) AS failed, SUM(passed + failed) AS evaluated,
           SUM(failed) / SUM(passed + failed) AS failure_ratio
    FROM delta.`<lake root>/ops/data_quality`
    WHERE recorded_at >= current_timestamp() - INTERVAL 7 DAYS
    GROUP BY asset, expectation
    ORDER BY failure_ratio DESC
    LIMIT 10
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import ExpectationResult

DATA_QUALITY = TableName("ops", "data_quality")
COLUMNS = (
    ("run_id", "STRING"),
    ("asset", "STRING"),
    ("partition", "STRING"),
    ("expectation", "STRING"),
    ("action", "STRING"),
    ("passed", "BIGINT"),
    ("failed", "BIGINT"),
    ("recorded_at", "TIMESTAMP"),
)
SCHEMA = ", ".join(f"`{name}` {kind}" for name, kind in COLUMNS)


#: A record of the history: (run_id, asset, partition, expectation, action, passed, failed, recorded_at).
Record = tuple[str, str, str | None, str, str, int, int, datetime]


def record_results(
    tables: DeltaTables,
    table: TableName,
    run_id: str,
    results_by_partition: Mapping[str | None, Sequence[ExpectationResult]],
) -> list[Record]:
    """Append one record per expectation and partition (a day of a partitioned write, else
    None); return the records appended."""
    now = datetime.now(UTC)
    rows: list[Record] = [
        (
            run_id,
            str(table),
            partition,
            r.expectation.name,
            str(r.expectation.action),
            r.passed_rows,
            r.failed_rows,
            now,
        )
        for partition, results in results_by_partition.items()
        for r in results
    ]
    if rows:
        tables.append(DATA_QUALITY, tables.spark.createDataFrame(rows, schema=SCHEMA))
    return rows
