"""The unit of work: everything one table's materialisation does, without Dagster.

A unit reads its inputs from their tables, transforms, writes with the table's semantics,
and computes metadata and check outcomes. It receives only a ``UnitRequest`` (the table,
the run, the as-of date, the partition) and the deployment's tables, so it runs the same
inside a Dagster step, in a separate process (``python -m lakehouse_dagster.units``), or on
a remote cluster. Results are plain JSON-able data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lakehouse_dagster.lake.delta import ColumnInfo, DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.checks import (
    PRIMARY_KEY_CHECK,
    CheckOutcome,
    CheckSpec,
    Severity,
    expectation_check_specs,
    expectation_outcomes,
    primary_key_outcome,
)
from lakehouse_dagster.quality.expectations import (
    Evaluation,
    Expectation,
    ExpectationFailedError,
    ExpectationResult,
    evaluate,
)
from lakehouse_dagster.quality.history import record_results
from lakehouse_dagster.quality.quarantine import (
    insert_new_into_quarantine,
    quarantine_table,
    replace_quarantine,
)
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.transforms.cdc import POSITION
from lakehouse_dagster.units.table_checks import TableCheck

__all__ = ["CheckOutcome", "CheckSpec", "Severity"]


@dataclass(frozen=True)
class PartitionWindow:
    """A range of daily partitions: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty partition window [{self.start}, {self.end})")

    def predicate(self, column: str) -> str:
        """SQL for the rows of the window, as ``replaceWhere`` takes it."""
        return f"{column} >= DATE'{self.start.isoformat()}' AND {column} < DATE'{self.end.isoformat()}'"


@dataclass(frozen=True)
class UnitRequest:
    table: str
    run_id: str = "manual"
    as_of_date: date | None = None
    partition: PartitionWindow | None = None

    def partition_label(self) -> str | None:
        """``2026-11-01..2026-11-05`` (both included) for the quality history."""
        if self.partition is None:
            return None
        last = date.fromordinal(self.partition.end.toordinal() - 1)
        return (
            self.partition.start.isoformat()
            if last == self.partition.start
            else f"{self.partition.start}..{last}"
        )

    def require_partition(self) -> PartitionWindow:
        if self.partition is None:
            raise ValueError(f"{self.table} is partitioned by day: give a partition (start and end date)")
        return self.partition

    def resolved_as_of_date(self) -> date:
        """The logical date of the run: as given, else today (UTC), fixed once per request."""
        return self.as_of_date or datetime.now(UTC).date()

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> UnitRequest:
        raw = json.loads(text)
        partition = raw.get("partition")
        return cls(
            table=raw["table"],
            run_id=raw.get("run_id") or "manual",
            as_of_date=date.fromisoformat(raw["as_of_date"]) if raw.get("as_of_date") else None,
            partition=PartitionWindow(
                date.fromisoformat(partition["start"]), date.fromisoformat(partition["end"])
            )
            if partition
            else None,
        )


@dataclass
class UnitResult:
    table: str
    uri: str
    metadata: dict[str, Any]
    columns: list[ColumnInfo]
    checks: list[CheckOutcome]

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> UnitResult:
        raw = json.loads(text)
        return cls(
            table=raw["table"],
            uri=raw["uri"],
            metadata=raw["metadata"],
            columns=[ColumnInfo(**column) for column in raw["columns"]],
            checks=[
                CheckOutcome(**{**check, "severity": Severity(check["severity"])}) for check in raw["checks"]
            ],
        )


@dataclass(frozen=True)
class TableUnit:
    """A table's definition: its inputs, its unit of work, its expectations and checks."""

    name: TableName
    description: str
    group: str
    run: Callable[[UnitContext], UnitResult]
    inputs: tuple[TableName, ...] = ()
    #: Row expectations, evaluated in one pass before the write (warn / drop / fail).
    expectations: tuple[Expectation, ...] = ()
    #: Columns that identify a row: checked present and unique after every write.
    primary_key: tuple[str, ...] = ()
    #: Table-level checks computed after every write (referential integrity, row counts, ...).
    table_checks: tuple[TableCheck, ...] = ()
    #: Checks whose outcomes the unit's own run function reports.
    checks: tuple[CheckSpec, ...] = ()
    uses_as_of_date: bool = False
    #: The date column of daily partitions (written with ``replaceWhere``, backfilled in one run);
    #: None for a table that is not partitioned.
    partition_column: str | None = None
    #: Output column -> the input columns it is computed from.
    column_lineage: Mapping[str, tuple[tuple[TableName, str], ...]] = field(default_factory=dict)

    @property
    def partitioned(self) -> bool:
        return self.partition_column is not None

    @property
    def upstream(self) -> tuple[TableName, ...]:
        """The inputs, and the tables its checks read: all built before this one."""
        needed = [table for check in self.table_checks for table in check.needs]
        return tuple(dict.fromkeys([*self.inputs, *needed]))

    def check_specs(self) -> tuple[CheckSpec, ...]:
        specs = [
            *self.checks,
            *(c.spec for c in self.table_checks),
            *expectation_check_specs(self.expectations),
        ]
        if self.primary_key:
            specs.append(PRIMARY_KEY_CHECK.with_description(self.primary_key))
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: check names must be unique, got {names}")
        return tuple(specs)


@dataclass
class UnitContext:
    request: UnitRequest
    tables: DeltaTables
    log: logging.Logger
    unit: TableUnit
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def spark(self) -> SparkSession:
        return self.tables.spark

    @property
    def name(self) -> TableName:
        return self.unit.name

    def partition_predicate(self) -> str | None:
        """SQL for the rows of the partitions this run writes (None when not partitioned)."""
        if not self.unit.partitioned:
            return None
        return self.request.require_partition().predicate(self.unit.partition_column)

    def tolerance(self, check: str) -> float:
        return self.thresholds.for_check(str(self.name), check)

    def expectations(self) -> list[Expectation]:
        """The table's expectations, with ``{as_of_date}`` in a condition set to the run's date."""
        as_of_date = self.request.resolved_as_of_date().isoformat()
        return [
            replace(e, condition=e.condition.replace("{as_of_date}", as_of_date))
            for e in self.unit.expectations
        ]

    def evaluate(self, frame: DataFrame, key_columns: tuple[str, ...] | None = None) -> Evaluation:
        """One pass of the table's expectations over ``frame``; raises if a ``fail`` one fails."""
        expectations = self.expectations()
        try:
            return evaluate(
                frame,
                expectations,
                key_columns=self.unit.primary_key if key_columns is None else key_columns,
                tolerances={e.name: self.tolerance(e.name) for e in expectations},
            )
        except ExpectationFailedError as error:
            # The table is not written, but the failure is part of its quality history.
            record_results(
                self.tables, self.name, self.request.run_id, self.request.partition_label(), error.results
            )
            raise

    def quarantine(
        self, evaluation: Evaluation, *, incremental: bool = False, predicate: str | None = None
    ) -> None:
        """Write the rows the drop expectations kept out to ``quarantine.<table>``: add the new ones
        (``incremental``), or replace the table's quarantine (or the rows matching ``predicate``)."""
        run_id = self.request.run_id
        if incremental:
            if evaluation.dropped_rows:
                insert_new_into_quarantine(
                    self.tables, self.name, evaluation.dropped, run_id, identity=POSITION
                )
        elif evaluation.dropped_rows or self.tables.exists(quarantine_table(self.name)):
            replace_quarantine(self.tables, self.name, evaluation.dropped, run_id, predicate=predicate)

    def report_quality(
        self, results: list[ExpectationResult], rows_evaluated: int, rows_quarantined: int
    ) -> tuple[dict[str, Any], list[CheckOutcome]]:
        """Append the results to the quality history; return them as metadata and check outcomes."""
        record_results(self.tables, self.name, self.request.run_id, self.request.partition_label(), results)
        metadata: dict[str, Any] = {
            "lakehouse/rows_evaluated": rows_evaluated,
            "lakehouse/rows_quarantined": rows_quarantined,
        }
        for result in results:
            metadata[f"quality/{result.expectation.name}/failed_records"] = result.failed_rows
        return metadata, expectation_outcomes(results)

    def record_quality(
        self, evaluation: Evaluation, *, incremental: bool = False, predicate: str | None = None
    ) -> tuple[dict[str, Any], list[CheckOutcome]]:
        """After the table's write: quarantine, quality history, metadata and check outcomes."""
        self.quarantine(evaluation, incremental=incremental, predicate=predicate)
        return self.report_quality(evaluation.results, evaluation.input_rows, evaluation.dropped_rows)

    def result(self, metadata: dict[str, Any], checks: list[CheckOutcome] | None = None) -> UnitResult:
        """The unit's result for its table as written: row count, version, location, schema, and the
        outcomes of the primary-key check (over the partition written, if any) and table checks."""
        tables, name = self.tables, self.name
        outcomes = list(checks or [])
        if self.unit.primary_key:
            where = self.partition_predicate()
            outcomes.append(primary_key_outcome(tables.read(name), self.unit.primary_key, where))
        outcomes += [check.evaluate(self) for check in self.unit.table_checks]
        return UnitResult(
            table=str(name),
            uri=tables.uri(name),
            metadata={
                "dagster/row_count": tables.read(name).count(),
                "lakehouse/delta_version": tables.version(name),
                **metadata,
            },
            columns=tables.columns(name),
            checks=outcomes,
        )
