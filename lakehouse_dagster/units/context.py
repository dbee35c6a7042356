"""The unit of work's context: what a table's build reads, checks and writes with, free of Dagster.

A unit receives a ``UnitRequest`` (the table, the run, its as-of date, the partition) and
the deployment's tables, so it runs the same inside a Dagster step, in a separate process
(``python -m lakehouse_dagster.units``), or on a remote cluster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession

from lakehouse_dagster.cdc.spec import POSITION
from lakehouse_dagster.lake.delta import DateWindow, DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.checks import CheckOutcome, expectation_outcomes, primary_key_outcome
from lakehouse_dagster.quality.expectations import (
    Evaluation,
    Expectation,
    ExpectationFailedError,
    ExpectationResult,
    evaluate,
)
from lakehouse_dagster.quality.history import record_results
from lakehouse_dagster.quality.quarantine import add_to_quarantine, quarantine_table, replace_quarantine
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest

if TYPE_CHECKING:
    from lakehouse_dagster.declarations.table import Table
    from lakehouse_dagster.ml.models import ModelStore
    from lakehouse_dagster.ml.settings import MlflowSettings


@dataclass(frozen=True)
class Quality:
    """Expectation results as metadata and check outcomes."""

    metadata: dict[str, Any]
    outcomes: list[CheckOutcome]


@dataclass
class UnitContext:
    request: UnitRequest
    tables: DeltaTables
    table: Table
    log: logging.Logger
    thresholds: Thresholds = field(default_factory=Thresholds)
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

    def evaluate(self, frame: DataFrame, key_columns: tuple[str, ...] | None = None) -> Evaluation:
        """One pass of the table's expectations over ``frame``; raises if a ``fail`` one fails."""
        expectations = self.expectations()
        try:
            return evaluate(
                frame,
                expectations,
                key_columns=self.table.primary_key if key_columns is None else key_columns,
                tolerances={e.name: self.tolerance(e.name) for e in expectations},
            )
        except ExpectationFailedError as error:
            # The table is not written, but the failure is part of its quality history.
            self._record(error.results)
            raise

    def _record(self, results: list[ExpectationResult]) -> None:
        partition = self.request.partition.label() if self.request.partition else None
        record_results(self.tables, self.name, self.request.run_id, partition, results)

    def quarantine(self, evaluation: Evaluation, *, incremental: bool = False) -> None:
        """Write the rows the drop expectations kept out to ``quarantine.<table>``: add the new
        ones (``incremental``), or replace the table's quarantine (the partitions' rows only,
        for a partitioned table)."""
        run_id = self.request.run_id
        if incremental:
            if evaluation.dropped_rows:
                add_to_quarantine(self.tables, self.name, evaluation.dropped, run_id, identity=POSITION)
        elif evaluation.dropped_rows or self.tables.exists(quarantine_table(self.name)):
            replace_quarantine(
                self.tables, self.name, evaluation.dropped, run_id, window=self.partition_window()
            )

    def report_results(
        self, results: list[ExpectationResult], rows_evaluated: int, rows_quarantined: int
    ) -> Quality:
        """Append the results to the quality history; return them as metadata and check outcomes."""
        self._record(results)
        metadata: dict[str, Any] = {
            "lakehouse/rows_evaluated": rows_evaluated,
            "lakehouse/rows_quarantined": rows_quarantined,
        }
        for result in results:
            metadata[f"quality/{result.expectation.name}/failed_records"] = result.failed_rows
        return Quality(metadata, expectation_outcomes(results))

    def quarantine_and_report(self, evaluation: Evaluation, *, incremental: bool = False) -> Quality:
        """After the table's write: quarantine, quality history, metadata and check outcomes."""
        self.quarantine(evaluation, incremental=incremental)
        return self.report_results(evaluation.results, evaluation.input_rows, evaluation.dropped_rows)

    def result(self, metadata: dict[str, Any], checks: list[CheckOutcome] | None = None) -> UnitResult:
        """The unit's result for its table as written: row count, version, location, schema, and the
        outcomes of the primary-key check (over the partitions written, if any) and table checks."""
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
        return UnitResult(
            table=str(name),
            uri=tables.uri(name),
            metadata={
                "dagster/row_count": tables.read(name).count(),
                "dagster/table_name": tables.layout.catalog_name(name),
                "lakehouse/delta_version": tables.version(name),
                **metadata,
            },
            columns=tables.columns(name),
            checks=outcomes,
            lineage={
                column: [[str(table), source] for table, source in deps]
                for column, deps in self.table.column_lineage.items()
            },
        )
