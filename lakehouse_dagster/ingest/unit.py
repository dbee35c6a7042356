"""The unit of a bronze table fed by files: ingest what is new, report files and quality.

Bronze keeps every row as it landed, so its expectations only warn (or fail the batch):
they never drop. Every bronze table expects ``_rescued_data`` to be null; how large a share
of rescued rows a table tolerates is in ``quality/thresholds.yaml``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lakehouse_dagster.ingest.autoloader import IngestReport, ingest
from lakehouse_dagster.ingest.sources import REJECTED_FILES_CHECK
from lakehouse_dagster.lake.delta import ConcurrentWriteError
from lakehouse_dagster.quality.checks import CheckOutcome
from lakehouse_dagster.quality.expectations import Evaluation, ExpectationResult
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult

_EXAMPLES = 20


def ingest_files(context: UnitContext) -> UnitResult:
    tables, name, source = context.tables, context.name, context.table.source
    assert source is not None
    evaluations: list[Evaluation] = []
    report = ingest(
        tables,
        source,
        name,
        log=context.log,
        uris=context.request.files,
        check_batch=lambda frame: evaluations.append(
            context.evaluate(frame, key_columns=("_source_file", "_source_row"))
        ),
    )
    if not tables.exists(name):
        if report.files_claimed_elsewhere:
            raise ConcurrentWriteError(
                f"{name}: another writer claimed the {report.files_claimed_elsewhere} new file(s) and "
                "has not created the table yet; this run ingested nothing"
            )
        raise FileNotFoundError(
            f"{name}: no {source.suffix} files under {tables.layout.landing_uri(source.folder)} and the "
            "table does not exist yet. Check LAKEHOUSE_LANDING, or land sample data with "
            "`python -m lakehouse_dagster.sample_data`."
        )
    quality = context.report_results(combined_results(context, evaluations), report.rows_ingested, 0)
    return context.result(
        {**ingest_metadata(report), **quality.metadata}, [*quality.outcomes, _rejected(report)]
    )


def combined_results(context: UnitContext, evaluations: list[Evaluation]) -> list[ExpectationResult]:
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
        "lakehouse/files_claimed_elsewhere": report.files_claimed_elsewhere,
        "lakehouse/rows_ingested": report.rows_ingested,
        "lakehouse/rows_rescued": report.rows_rescued,
        "lakehouse/new_columns": report.new_columns,
        "lakehouse/batches": report.batches,
        "lakehouse/recovered_batches": report.recovered_batches,
        "lakehouse/rejected_files": dict(list(report.files_rejected.items())[:_EXAMPLES]),
        "lakehouse/empty_files": report.files_empty[:_EXAMPLES],
        "lakehouse/changed_files": report.files_changed_ignored[:_EXAMPLES],
    }


def _rejected(report: IngestReport) -> CheckOutcome:
    return CheckOutcome(
        REJECTED_FILES_CHECK.name,
        passed=not report.files_rejected,
        severity=REJECTED_FILES_CHECK.severity,
        metadata={
            "files_rejected": len(report.files_rejected),
            "rejected_files": dict(list(report.files_rejected.items())[:_EXAMPLES]),
        },
    )
