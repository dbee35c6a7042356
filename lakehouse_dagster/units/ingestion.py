"""Bronze tables fed by files in the landing zone: one factory for all of them."""

from __future__ import annotations

from functools import partial
from typing import Any

from lakehouse_dagster.ingest.autoloader import FileSource, IngestReport, ingest_new_files
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.units.base import (
    CheckOutcome,
    CheckSpec,
    Severity,
    TableUnit,
    UnitContext,
    UnitResult,
    describe,
    share,
)

DEFAULT_MAX_RESCUED_SHARE = 0.05
_EXAMPLES = 20

REJECTED_FILES_CHECK = CheckSpec(
    "no_rejected_files", "Every file landed since the last run could be parsed.", Severity.WARN
)


def rescued_share_check(max_rescued_share: float) -> CheckSpec:
    return CheckSpec(
        "rescued_row_share",
        f"At most {max_rescued_share:.0%} of the rows ingested by a run have _rescued_data.",
        Severity.WARN,
    )


def file_ingestion_unit(
    name: TableName,
    source: FileSource,
    *,
    description: str,
    group: str,
    max_rescued_share: float = DEFAULT_MAX_RESCUED_SHARE,
) -> TableUnit:
    return TableUnit(
        name=name,
        description=description,
        group=group,
        run=partial(ingest_files, name, source, max_rescued_share),
        checks=(rescued_share_check(max_rescued_share), REJECTED_FILES_CHECK),
    )


def ingest_files(
    name: TableName, source: FileSource, max_rescued_share: float, context: UnitContext
) -> UnitResult:
    tables = context.tables
    report = ingest_new_files(tables, source, name, log=context.log)
    if not tables.exists(name):
        raise FileNotFoundError(
            f"{name}: no {source.suffix} files under {tables.layout.landing_uri(source.folder)} and the "
            "table does not exist yet. Check LAKEHOUSE_LANDING, or land sample data with "
            "`python -m lakehouse_dagster.sample_data`."
        )
    return describe(tables, name, ingest_metadata(report), ingest_checks(report, max_rescued_share))


def ingest_metadata(report: IngestReport) -> dict[str, Any]:
    return {
        "lakehouse/files_ingested": report.files_ingested,
        "lakehouse/files_empty": len(report.files_empty),
        "lakehouse/files_rejected": len(report.files_rejected),
        "lakehouse/files_changed_ignored": len(report.files_changed_ignored),
        "lakehouse/rows_ingested": report.rows_ingested,
        "lakehouse/rows_rescued": report.rows_rescued,
        "lakehouse/new_columns": report.new_columns,
        "lakehouse/batches": report.batches,
        "lakehouse/recovered_batches": report.recovered_batches + report.abandoned_batches,
        "lakehouse/rejected_files": dict(list(report.files_rejected.items())[:_EXAMPLES]),
        "lakehouse/empty_files": report.files_empty[:_EXAMPLES],
    }


def ingest_checks(report: IngestReport, max_rescued_share: float) -> list[CheckOutcome]:
    rescued_share = share(report.rows_rescued, report.rows_ingested)
    return [
        CheckOutcome(
            "rescued_row_share",
            passed=rescued_share <= max_rescued_share,
            severity=Severity.WARN,
            metadata={
                "rows_ingested": report.rows_ingested,
                "rows_rescued": report.rows_rescued,
                "rescued_share": rescued_share,
                "threshold": max_rescued_share,
            },
        ),
        CheckOutcome(
            REJECTED_FILES_CHECK.name,
            passed=not report.files_rejected,
            severity=REJECTED_FILES_CHECK.severity,
            metadata={
                "files_rejected": len(report.files_rejected),
                "rejected_files": dict(list(report.files_rejected.items())[:_EXAMPLES]),
            },
        ),
    ]
