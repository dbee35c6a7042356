"""The writes a table's build ends with: check, write, quarantine, report. Shared by domains."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame

from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult


def overwrite_table(
    context: UnitContext, frame: DataFrame, metadata: dict[str, Any] | None = None
) -> UnitResult:
    """Expectations over ``frame``, then replace the whole table with the rows kept."""
    evaluation = context.evaluate(frame)
    context.tables.overwrite(context.name, evaluation.kept)
    quality = context.quarantine_and_report(evaluation)
    return context.result({**(metadata or {}), **quality.metadata}, quality.outcomes)


def replace_partitions(context: UnitContext, frame: DataFrame) -> UnitResult:
    """Expectations over the window's rows, then one ``replaceWhere`` write of the whole window."""
    window = context.partition_window()
    if window is None:
        raise ValueError(f"{context.name} is not partitioned")
    evaluation = context.evaluate(frame)
    context.tables.replace_window(context.name, evaluation.kept, window, partition_by=(window.column,))
    quality = context.quarantine_and_report(evaluation)
    metadata = {
        "lakehouse/partition_start": window.start.isoformat(),
        "lakehouse/partition_end": window.end.isoformat(),
        "lakehouse/partition_rows": context.tables.read(context.name).where(window.condition()).count(),
        **quality.metadata,
    }
    return context.result(metadata, quality.outcomes)
