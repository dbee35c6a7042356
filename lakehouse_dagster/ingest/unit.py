"""The unit of a bronze table fed by files: ingest what is new, report files and quality.

Bronze keeps every row as it landed, so its expectations only warn (or fail the batch):
they never drop. Every bronze table expects ``_rescued_data`` to be null; how large a share
of rescued rows a table tolerates is in ``quality/thresholds.yaml``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pyspark.sql import functions as F

from lakehouse_dagster.ingest.autoloader import IngestReport, create_empty_table, ingest
from lakehouse_dagster.ingest.sources import (
    BATCH_ID,
    REJECTED_FILES_CHECK,
    RESCUED_DATA,
    SOURCE_FILE,
    SOURCE_ROW,
)
from lakehouse_dagster.lake.delta import ConcurrentWriteError
from lakehouse_dagster.quality.checks import CheckOutcome
from lakehouse_dagster.quality.expectations import Evaluation, ExpectationResult
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import Sample, UnitResult
from lakehouse_dagster.units.samples import readable_rows, relative_to

_EXAMPLES = 20
#: Metadata key of the sample of rescued rows.
RESCUED_SAMPLE = "lakehouse/rescued_rows_sample"


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
        skip_missing=context.request.skip_missing_files,
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
        if not (report.files_rejected or report.files_empty):
            raise FileNotFoundError(
                f"{name}: no {source.suffix} files under {tables.layout.landing_uri(source.folder)} and "
                "the table does not exist yet. Check LAKEHOUSE_LANDING, or land sample data with "
                "`python -m lakehouse_dagster.sample_data`."
            )
        # Files landed, none with rows (empty or rejected): the table starts empty, and they are
        # reported like any other (the rejected ones fail no_rejected_files, naming them).
        create_empty_table(tables, source, name)
    quality = context.report_results(combined_results(context, evaluations), report.rows_ingested, 0)
    landing = tables.layout.landing
    return context.result(
        {**ingest_metadata(report, landing), **quality.metadata},
        [*quality.outcomes, _rejected(report, landing)],
        samples={RESCUED_SAMPLE: _rescued_rows(context, report)},
    )


def _rescued_rows(context: UnitContext, report: IngestReport) -> Sample:
    """A few rows of this run's batches with rescued data: where each came from and what did not
    fit (the row is kept, its rescued values in ``_rescued_data``)."""
    batches = [*report.batches, *report.recovered_batches]
    if not batches:
        return []
    rows = context.tables.read(context.name).where(
        F.col(BATCH_ID).isin(batches) & F.col(RESCUED_DATA).isNotNull()
    )
    return readable_rows(
        rows.orderBy(SOURCE_FILE, SOURCE_ROW), landing=context.tables.layout.landing, first=(RESCUED_DATA,)
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


def ingest_metadata(report: IngestReport, landing: str) -> dict[str, Any]:
    """Files and rows of the run; files named below the landing zone."""
    return {
        "lakehouse/files_ingested": report.files_ingested,
        "lakehouse/files_empty": len(report.files_empty),
        "lakehouse/files_rejected": len(report.files_rejected),
        "lakehouse/files_changed_ignored": len(report.files_changed_ignored),
        "lakehouse/files_missing": report.files_missing,
        "lakehouse/files_claimed_elsewhere": report.files_claimed_elsewhere,
        "lakehouse/rows_ingested": report.rows_ingested,
        "lakehouse/rows_rescued": report.rows_rescued,
        "lakehouse/new_columns": report.new_columns,
        "lakehouse/batches": report.batches,
        "lakehouse/recovered_batches": report.recovered_batches,
        "lakehouse/rejected_files": _rejected_files(report, landing),
        "lakehouse/empty_files": [relative_to(uri, landing) for uri in report.files_empty[:_EXAMPLES]],
        "lakehouse/changed_files": [
            relative_to(uri, landing) for uri in report.files_changed_ignored[:_EXAMPLES]
        ],
    }


def _rejected_files(report: IngestReport, landing: str) -> dict[str, str]:
    """Up to 20 rejected files (below the landing zone) and why each was rejected."""
    return {relative_to(uri, landing): why for uri, why in list(report.files_rejected.items())[:_EXAMPLES]}


def _rejected(report: IngestReport, landing: str) -> CheckOutcome:
    rejected = _rejected_files(report, landing)
    return CheckOutcome(
        REJECTED_FILES_CHECK.name,
        passed=not report.files_rejected,
        severity=REJECTED_FILES_CHECK.severity,
        description=f"{len(report.files_rejected)} file(s) could not be parsed, e.g. "
        + "; ".join(f"{path}: {why}" for path, why in list(rejected.items())[:3])
        if rejected
        else "Every landed file could be parsed",
        metadata={"files_rejected": len(report.files_rejected), "rejected_files": rejected},
    )
