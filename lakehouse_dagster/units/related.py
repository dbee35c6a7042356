"""Reports of the tables a unit writes besides its own: its quarantine and the quality history.

Each becomes an asset in the UI (materialised when the unit wrote it, observed otherwise),
with its row count and a readable sample: which rows were quarantined, from where and why;
which quality records the unit added.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import functions as F

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import FAILED_EXPECTATIONS
from lakehouse_dagster.quality.history import DATA_QUALITY, Record
from lakehouse_dagster.quality.quarantine import QUARANTINED_AT, RUN_ID, quarantine_table
from lakehouse_dagster.units.report import RelatedTable
from lakehouse_dagster.units.samples import SAMPLE_ROWS, readable_rows, text

#: Metadata key of a related table's sample.
SAMPLE = "lakehouse/sample"
WHY = "why"


def quarantine_report(
    tables: DeltaTables, target: TableName, quarantined_now: int, changed: bool
) -> RelatedTable:
    """``quarantine.<table>``: its rows, the rows this run kept out, how many each expectation
    keeps out, and the latest quarantined rows with where they came from and why."""
    name = quarantine_table(target)
    metadata = {"lakehouse/quarantined_by_this_run": quarantined_now, "lakehouse/quarantine_of": str(target)}
    if not tables.exists(name):
        return RelatedTable(str(name), changed=False, metadata={"dagster/row_count": 0, **metadata})
    rows = tables.read(name)
    by_expectation = {
        row[0]: row[1]
        for row in rows.select(F.explode(FAILED_EXPECTATIONS).alias("e")).groupBy("e").count().collect()
    }
    latest = rows.withColumn(WHY, F.array_join(F.col(FAILED_EXPECTATIONS), ", ")).orderBy(
        F.col(QUARANTINED_AT).desc(),
        *(F.col(c) for c in ("_source_file", "_source_row") if c in rows.columns),
    )
    return RelatedTable(
        str(name),
        changed=changed,
        uri=tables.uri(name),
        metadata={
            "dagster/row_count": rows.count(),
            "lakehouse/delta_version": tables.version(name),
            **metadata,
            "lakehouse/rows_by_expectation": dict(sorted(by_expectation.items())),
        },
        columns=tables.columns(name),
        samples={
            SAMPLE: readable_rows(
                latest,
                landing=tables.layout.landing,
                first=(WHY,),
                leave_out=(FAILED_EXPECTATIONS, QUARANTINED_AT, RUN_ID),
            )
        },
    )


def history_report(tables: DeltaTables, records: Sequence[Record]) -> RelatedTable:
    """``ops.data_quality`` after the unit appended ``records``: its rows, and the records
    added (the most failures first)."""
    worst = sorted(records, key=lambda r: (-r[6], r[2] or "", r[3]))[:SAMPLE_ROWS]
    return RelatedTable(
        str(DATA_QUALITY),
        changed=True,
        uri=tables.uri(DATA_QUALITY),
        metadata={
            "dagster/row_count": tables.read(DATA_QUALITY).count(),
            "lakehouse/delta_version": tables.version(DATA_QUALITY),
            "lakehouse/records_added": len(records),
            "lakehouse/records_of": records[0][1] if records else None,
        },
        columns=tables.columns(DATA_QUALITY),
        samples={
            SAMPLE: [
                {
                    "asset": asset,
                    "partition": partition,
                    "expectation": expectation,
                    "action": action,
                    "passed": text(passed),
                    "failed": text(failed),
                }
                for _, asset, partition, expectation, action, passed, failed, _ in worst
            ]
        },
    )
