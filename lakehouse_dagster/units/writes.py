"""The writes a table's build ends with: check, write, quarantine, report. Shared by domains."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.lake.layout import quote_identifier
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult


def overwrite_table(
    context: UnitContext, frame: DataFrame, metadata: dict[str, Any] | None = None
) -> UnitResult:
    """Expectations over ``frame``, then replace the whole table with the rows kept. ``frame`` is
    computed once, into staging: the expectations' pass, the write and the quarantine read it."""
    with context.tables.materialized(context.name, frame) as computed:
        evaluation = context.evaluate(computed)
        context.tables.overwrite(context.name, evaluation.kept)
        quality = context.quarantine_and_report(evaluation)
    return context.result({**(metadata or {}), **quality.metadata}, quality.outcomes)


def replace_partitions(context: UnitContext, frame: DataFrame) -> UnitResult:
    """Expectations over the window's rows, then one ``replaceWhere`` write of the whole window.
    Each day of the window is reported with its own rows and quality counts. ``frame`` is
    computed for the pass, the write and the quarantine: build it from pinned reads
    (``tables.read(name, pinned=True)``), so that each computation sees the same rows."""
    window = context.partition_window()
    if window is None:
        raise ValueError(f"{context.name} is not partitioned")
    evaluation = context.evaluate(frame, by=window.column)
    context.tables.replace_window(context.name, evaluation.kept, window, partition_by=(window.column,))
    quality = context.quarantine_and_report(evaluation)
    column = F.col(quote_identifier(window.column))
    written = {
        row[0]: row[1]
        for row in context.tables.read(context.name)
        .where(window.condition())
        .groupBy(column)
        .count()
        .collect()
    }
    days = context.request.require_partition().days()
    partitions = {
        day.isoformat(): {"dagster/row_count": written.get(day, 0), **quality.daily[day.isoformat()]}
        for day in days
    }
    metadata = {
        "lakehouse/range": context.request.require_partition().label(),
        "lakehouse/range_rows": sum(written.values()),
    }
    return context.result(metadata, quality.outcomes, partitions=partitions)
