"""The unit of work's context: what a table's build reads, checks and writes with, free of Dagster.

A unit receives a ``UnitRequest`` (the table, the run, its as-of date, the partition) and
the deployment's tables, so it runs the same inside a Dagster step, in a separate process
(``python -m lakehouse_dagster.units``), or on a remote cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession

from lakehouse_dagster.cdc.spec import POSITION
from lakehouse_dagster.lake.delta import DateWindow, DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.checks import CheckOutcome, expectation_outcomes, primary_key_outcome
from lakehouse_dagster.quality.expectations import (
    NO_ROWS,
    Action,
    Evaluation,
    Expectation,
    ExpectationFailedError,
    ExpectationResult,
    GroupCounts,
    evaluate,
    results_of_group,
)
from lakehouse_dagster.quality.history import record_results
from lakehouse_dagster.quality.quarantine import add_to_quarantine, quarantine_table, replace_quarantine
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.units.related import history_report, quarantine_report
from lakehouse_dagster.units.report import RelatedTable, Sample, UnitResult
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster.units.samples import readable_position_key

if TYPE_CHECKING:
    from lakehouse_dagster.declarations.table import Table
    from lakehouse_dagster.ml.models import ModelStore
    from lakehouse_dagster.ml.settings import MlflowSettings


@dataclass(frozen=True)
class Quality:
    """Expectation results as metadata and check outcomes; for a partitioned write, each day's
    counts as that day's metadata."""

    metadata: dict[str, Any]
    outcomes: list[CheckOutcome]
    daily: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class UnitContext:
    request: UnitRequest
    tables: DeltaTables
    table: Table
    log: logging.Logger
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: The tables written besides the table's own (its quarantine, the quality history).
    related: list[RelatedTable] = field(default_factory=list)
    #: Where models are tracked and registered (the MLflow seam); None where none is configured.
    models: MlflowSettings | None = None

    @property
    def spark(self) -> SparkSession:
        return self.tables.spark

    @property
    def name(self) -> TableName:
        return self.table.name

    @property
    def partition_column(self) -> str:
        if self.table.partitions is None:
            raise ValueError(f"{self.name} is not partitioned")
        return self.table.partitions.column

    def model_store(self) -> ModelStore:
        """The MLflow seam, for a table built by a model; a clear error where none is configured."""
        from lakehouse_dagster.ml.models import ModelStore

        if self.models is None:
            raise ValueError(
                f"{self.name} needs MLflow, and this runner was given none (the deployment's mlflow "
                "resource; LAKEHOUSE_MLFLOW_TRACKING_URI)"
            )
        return ModelStore(self.models)

    def partition_window(self) -> DateWindow | None:
        """The rows of the partitions this run writes (None when not partitioned)."""
        if self.table.partitions is None:
            return None
        window = self.request.require_partition()
        return DateWindow(self.partition_column, window.start, window.end)

    def tolerance(self, check: str) -> float:
        return self.thresholds.for_check(str(self.name), check)

    def expectations(self) -> list[Expectation]:
        """The table's expectations, with ``{as_of_date}`` in a condition set to the run's date."""
        as_of_date = self.request.as_of_date.isoformat()
        return [
            replace(e, condition=e.condition.replace("{as_of_date}", as_of_date))
            for e in self.table.expectations
        ]

    def evaluate(
        self, frame: DataFrame, key_columns: tuple[str, ...] | None = None, *, by: str | None = None
    ) -> Evaluation:
        """One pass of the table's expectations over ``frame`` (grouped ``by`` a column: a
        partitioned write's days); raises if a ``fail`` one fails."""
        expectations = self.expectations()
        keys = self.table.primary_key if key_columns is None else key_columns
        try:
            evaluation = evaluate(
                frame,
                expectations,
                key_columns=keys,
                tolerances={e.name: self.tolerance(e.name) for e in expectations},
                by=by,
            )
        except ExpectationFailedError as error:
            # The table is not written, but the failure is part of its quality history: day by
            # day when grouped by day, as a successful write records it.
            error.results = self._readable(error.results, keys)
            if by is None:
                self._record({self._partition_label(): error.results})
            else:
                self._record(self._results_by_day(error.results, error.groups))
            raise
        return replace(evaluation, results=self._readable(evaluation.results, keys))

    def _readable(self, results: list[ExpectationResult], keys: tuple[str, ...]) -> list[ExpectationResult]:
        """Sample keys of a landed row's position read ``customers/customers_00003.csv:47``."""
        if keys != POSITION:
            return results
        landing = self.tables.layout.landing
        return [
            replace(r, sample_keys=[readable_position_key(k, landing) for k in r.sample_keys])
            for r in results
        ]

    def _results_by_day(
        self, results: list[ExpectationResult], groups: Mapping[Any, GroupCounts]
    ) -> dict[str | None, list[ExpectationResult]]:
        """Each day of the run's partitions with its own results (zeros for a day without rows)."""
        return {
            day.isoformat(): results_of_group(results, groups.get(day, NO_ROWS))
            for day in self.request.require_partition().days()
        }

    def _partition_label(self) -> str | None:
        return self.request.partition.label() if self.request.partition else None

    def _record(self, results_by_partition: dict[str | None, list[ExpectationResult]]) -> None:
        records = record_results(self.tables, self.name, self.request.run_id, results_by_partition)
        if records:
            self.related.append(history_report(self.tables, records))

    def quarantine(
        self, evaluation: Evaluation, *, incremental: bool = False, identity: Sequence[str] = POSITION
    ) -> None:
        """Write the rows the drop expectations kept out to ``quarantine.<table>``: add the new
        ones (``incremental``, a row known by its ``identity`` columns), or replace the table's
        quarantine (the partitions' rows only, for a partitioned table). A table without drop
        expectations has no quarantine."""
        if not any(e.action is Action.DROP for e in self.table.expectations):
            return
        run_id, name = self.request.run_id, quarantine_table(self.name)
        before = self.tables.version(name)
        if incremental:
            if evaluation.dropped_rows:
                add_to_quarantine(self.tables, self.name, evaluation.dropped, run_id, identity=identity)
        elif evaluation.dropped_rows or before is not None:
            replace_quarantine(
                self.tables, self.name, evaluation.dropped, run_id, window=self.partition_window()
            )
        changed = self.tables.version(name) != before
        self.related.append(quarantine_report(self.tables, self.name, evaluation.dropped_rows, changed))

    def report_results(
        self, results: list[ExpectationResult], rows_evaluated: int, rows_quarantined: int
    ) -> Quality:
        """Append the results to the quality history; return them as metadata and check outcomes."""
        self._record({self._partition_label(): results})
        return Quality(
            _quality_metadata(results, rows_evaluated, rows_quarantined), expectation_outcomes(results)
        )

    def quarantine_and_report(self, evaluation: Evaluation, *, incremental: bool = False) -> Quality:
        """After the table's write: quarantine, quality history, metadata and check outcomes. An
        evaluation grouped by day is recorded, and reported as metadata, day by day."""
        self.quarantine(evaluation, incremental=incremental)
        if evaluation.by is None:
            return self.report_results(evaluation.results, evaluation.input_rows, evaluation.dropped_rows)
        days = self.request.require_partition().days()
        by_day = self._results_by_day(evaluation.results, evaluation.groups)
        self._record(by_day)
        counts = {day: evaluation.groups.get(day, NO_ROWS) for day in days}
        daily = {
            day.isoformat(): _quality_metadata(by_day[day.isoformat()], counts[day].rows, counts[day].dropped)
            for day in days
        }
        return Quality({}, expectation_outcomes(evaluation.results), daily)

    def result(
        self,
        metadata: dict[str, Any],
        checks: list[CheckOutcome] | None = None,
        *,
        partitions: dict[str, dict[str, Any]] | None = None,
        samples: dict[str, Sample] | None = None,
    ) -> UnitResult:
        """The unit's result for its table as written: row count, version, location, schema, and the
        outcomes of the primary-key check (over the partitions written, if any) and table checks.
        A partitioned write reports each day's own row count (``partitions``); the table's rows
        are then ``lakehouse/table_rows``, a figure of the whole write."""
        tables, name = self.tables, self.name
        outcomes = list(checks or [])
        if self.table.primary_key:
            window = self.partition_window()
            outcomes.append(
                primary_key_outcome(
                    tables.read(name), self.table.primary_key, window.condition() if window else None
                )
            )
        outcomes += [check.evaluate(self) for check in self.table.checks]
        rows = tables.read(name).count()
        return UnitResult(
            table=str(name),
            uri=tables.uri(name),
            metadata={
                "lakehouse/table_rows" if partitions else "dagster/row_count": rows,
                "dagster/table_name": tables.layout.catalog_name(name),  # as the unit named it
                "lakehouse/delta_version": tables.version(name),
                **metadata,
            },
            columns=tables.columns(name),
            checks=outcomes,
            lineage={
                column: [[str(table), source] for table, source in deps]
                for column, deps in self.table.column_lineage.items()
            },
            partitions=partitions or {},
            samples=samples or {},
            related=list(self.related),
        )


def _quality_metadata(
    results: list[ExpectationResult], rows_evaluated: int, rows_quarantined: int
) -> dict[str, Any]:
    """Rows evaluated and quarantined, and each expectation's failing rows (the UI plots them)."""
    metadata: dict[str, Any] = {
        "lakehouse/rows_evaluated": rows_evaluated,
        "lakehouse/rows_quarantined": rows_quarantined,
    }
    for result in results:
        metadata[f"quality/{result.expectation.name}/failed_records"] = result.failed_rows
    return metadata
