"""Quality history: per-expectation results of every materialisation in ``ops.data_quality``.

The equivalent of the quality records of the Delta Live Tables event log. Query it, for
example the worst expectations of the last 7 days:

    SELECT asset, expectation, SUM(failed) AS failed, SUM(passed + failed) AS evaluated,
           SUM(failed) / SUM(passed + failed) AS failure_ratio
    FROM delta.`<lake root>/ops/data_quality`
    WHERE recorded_at >= current_timestamp() - INTERVAL 7 DAYS
    GROUP BY asset, expectation
    ORDER BY failure_ratio DESC
    LIMIT 10
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import ExpectationResult

DATA_QUALITY = TableName("ops", "data_quality")
SCHEMA = (
    "run_id STRING, asset STRING, `partition` STRING, expectation STRING, action STRING, passed BIGINT, "
    "failed BIGINT, recorded_at TIMESTAMP"
)


def record_results(
    tables: DeltaTables,
    table: TableName,
    run_id: str,
    partition: str | None,
    results: Sequence[ExpectationResult],
) -> None:
    if not results:
        return
    now = datetime.now(UTC)
    rows = [
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
        for r in results
    ]
    tables.append(DATA_QUALITY, tables.spark.createDataFrame(rows, schema=SCHEMA))
