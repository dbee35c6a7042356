"""Table-level checks, computed after a table's write: referential integrity, row-count
anomalies, and any check a domain declares with ``table_check``.

Each is a ``TableCheck``: its spec (for the Dagster asset check) and a function of the unit's
context that returns the outcome. Tolerances come from ``quality/thresholds.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce
from statistics import median
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.lake.layout import TableName, quote_identifier
from lakehouse_dagster.quality.checks import CheckOutcome, CheckSpec, Severity, tolerance_text

if TYPE_CHECKING:
    from lakehouse_dagster.units.context import UnitContext


@dataclass(frozen=True)
class TableCheck:
    spec: CheckSpec
    evaluate: Callable[[UnitContext], CheckOutcome]
    #: Tables the check reads, which must be built before the checked table.
    needs: tuple[TableName, ...] = ()


def table_check(
    name: str,
    description: str,
    evaluate: Callable[[UnitContext], CheckOutcome],
    severity: Severity = Severity.ERROR,
) -> TableCheck:
    """A check of the written table; ``evaluate`` returns its outcome (named ``name``)."""
    return TableCheck(CheckSpec(name, description, severity), evaluate)


def references(
    name: str, columns: tuple[str, ...], parent: TableName, parent_columns: tuple[str, ...] | None = None
) -> TableCheck:
    """Every row's ``columns`` exist in ``parent`` (rows with a null reference are not orphans).
    Orphans are counted; the check fails when their share exceeds the table's tolerance."""
    parent_columns = parent_columns or columns
    spec = CheckSpec(
        name,
        f"({', '.join(columns)}) exists in {parent} ({', '.join(parent_columns)}); orphans are counted.",
        Severity.WARN,
    )

    def evaluate(context: UnitContext) -> CheckOutcome:
        rows = _rows_of_this_write(context).where(
            reduce(lambda a, b: a & b, (F.col(quote_identifier(c)).isNotNull() for c in columns))
        )
        total = rows.count()
        if not context.tables.exists(parent):
            return CheckOutcome(
                name,
                passed=total == 0,
                severity=spec.severity,
                description=f"{parent} does not exist: all {total} rows are orphans",
                metadata={"orphans": total, "rows": total},
            )
        parents = context.tables.read(parent).select(
            *(F.col(p).alias(c) for c, p in zip(columns, parent_columns, strict=True))
        )
        orphans = rows.join(parents, list(columns), "left_anti")
        orphan_count = orphans.count()
        samples = [", ".join(str(v) for v in row) for row in orphans.select(*columns).limit(5).collect()]
        tolerance = context.tolerance(name)
        share = orphan_count / total if total else 0.0
        return CheckOutcome(
            name,
            passed=share <= tolerance,
            severity=spec.severity,
            description=f"{orphan_count} of {total} rows reference no row of {parent}"
            + (f", {tolerance_text(tolerance, share <= tolerance)}" if orphan_count else ""),
            metadata={
                "orphans": orphan_count,
                "rows": total,
                "orphan_share": share,
                "tolerated_share": tolerance,
                "sample_orphans": samples,
            },
        )

    return TableCheck(spec, evaluate, needs=(parent,))


def row_count_anomaly(lookback_days: int = 7, default_tolerance: float = 0.5) -> TableCheck:
    """Each day written has about as many rows as the median of the ``lookback_days`` before it."""
    name = "row_count_anomaly"
    spec = CheckSpec(
        name,
        f"Each day's row count is within the tolerated deviation from the median of the {lookback_days} "
        "days before.",
        Severity.WARN,
    )

    def evaluate(context: UnitContext) -> CheckOutcome:
        window = context.request.require_partition()
        date_column = F.col(quote_identifier(context.partition_column))
        since = window.start - timedelta(days=lookback_days)
        counts = {
            row[0]: row[1]
            for row in context.tables.read(context.name)
            .where((date_column >= F.lit(since)) & (date_column < F.lit(window.end)))
            .groupBy(date_column)
            .count()
            .collect()
        }
        tolerance = context.thresholds.for_check(str(context.name), name, default_tolerance)
        anomalies = {}
        day = window.start
        while day < window.end:
            history = [counts[d] for d in _days(day - timedelta(days=lookback_days), day) if d in counts]
            if len(history) >= 3:
                expected = median(history)
                deviation = abs(counts.get(day, 0) - expected) / expected
                if deviation > tolerance:
                    anomalies[day.isoformat()] = {"rows": counts.get(day, 0), "median_before": expected}
            day += timedelta(days=1)
        return CheckOutcome(
            name,
            passed=not anomalies,
            severity=spec.severity,
            description=f"{len(anomalies)} day(s) more than {tolerance:.0%} off the median before them",
            metadata={"anomalies": anomalies, "tolerated_deviation": tolerance},
        )

    return TableCheck(spec, evaluate)


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def _rows_of_this_write(context: UnitContext) -> DataFrame:
    """The table's rows, or the rows of the partitions this run wrote."""
    rows = context.tables.read(context.name)
    window = context.partition_window()
    return rows.where(window.condition()) if window else rows
