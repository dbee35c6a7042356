"""Bronze tables fed by files in the landing zone: one factory for all of them.

Bronze keeps every row as it landed, so its expectations only warn (or fail the batch):
they never drop. Every bronze table expects ``_rescued_data`` to be null; how large a share
of rescued rows a table tolerates is in ``quality/thresholds.yaml``.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Any

from lakehouse_dagster.ingest.autoloader import RESCUED_DATA, FileSource, IngestReport, ingest_new_files
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import Action, Evaluation, Expectation, ExpectationResult
from lakehouse_dagster.units.base import CheckOutcome, CheckSpec, Severity, TableUnit, UnitContext, UnitResult

_EXAMPLES = 20

NO_RESCUED_DATA = Expectation(
    "no_rescued_data", f"{RESCUED_DATA} IS NULL", Action.WARN, "every value fitted its column and line"
)
REJECTED_FILES_CHECK = CheckSpec(
    "no_rejected_files", "Every file landed since the last run could be parsed.", Severity.WARN
)


def file_ingestion_unit(
    name: TableName,
    source: FileSource,
    *,
    description: str,
    group: str,
    expectations: tuple[Expectation, ...] = (),
) -> TableUnit:
    if any(e.action is Action.DROP for e in expectations):
        raise ValueError(f"{name}: bronze keeps every landed row; its expectations warn or fail, never drop")
    return TableUnit(
        name=name,
        description=description,
        group=group,
        run=partial(ingest_files, source),
        expectations=(NO_RESCUED_DATA, *expectations),
        checks=(REJECTED_FILES_CHECK,),
    )


def ingest_files(source: FileSource, context: UnitContext) -> UnitResult:
    tables, name = context.tables, context.name
    evaluations: list[Evaluation] = []
    report = ingest_new_files(
        tables,
        source,
        name,
        log=context.log,
        check_batch=lambda frame: evaluations.append(
            context.evaluate(frame, key_columns=("_source_file", "_source_row"))
        ),
    )
    if not tables.exists(name):
        raise FileNotFoundError(
            f"{name}: no {source.suffix} files under {tables.layout.landing_uri(source.folder)} and the "
            "table does not exist yet. Check LAKEHOUSE_LANDING, or land sample data with "
            "`python -m lakehouse_dagster.sample_data`."
        )
    results = _combined(context, evaluations)
    quality, outcomes = context.report_quality(results, report.rows_ingested, 0)
    outcomes.append(_rejected_files_outcome(report))
    return context.result({**ingest_metadata(report), **quality}, outcomes)


def _combined(context: UnitContext, evaluations: list[Evaluation]) -> list[ExpectationResult]:
    """One result per expectation over all batches of the run (zero rows when nothing landed)."""
    passed: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    samples: dict[str, list[str]] = defaultdict(list)
    for evaluation in evaluations:
        for result in evaluation.results:
            passed[result.expectation.name] += result.passed_rows
            failed[result.expectation.name] += result.failed_rows
            samples[result.expectation.name] += result.sample_keys
    return [
        ExpectationResult(e, passed[e.name], failed[e.name], samples[e.name][:3], context.tolerance(e.name))
        for e in context.expectations()
    ]


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


def _rejected_files_outcome(report: IngestReport) -> CheckOutcome:
    return CheckOutcome(
        REJECTED_FILES_CHECK.name,
        passed=not report.files_rejected,
        severity=REJECTED_FILES_CHECK.severity,
        metadata={
            "files_rejected": len(report.files_rejected),
            "rejected_files": dict(list(report.files_rejected.items())[:_EXAMPLES]),
        },
    )
