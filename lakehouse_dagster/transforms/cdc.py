"""AUTO CDC as pure transforms: changes in, current state or SCD2 history out.

The semantics are those of Delta Live Tables' AUTO CDC (``APPLY CHANGES``): per key, changes
are ordered by ``sequence_by`` (ties by their position in the landed files); the latest
change wins, and a change matched by ``apply_as_deletes`` removes the key. Because a key's
state is computed from all its changes, late, duplicated and out-of-order deliveries give
the same result as in-order ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

START_AT = "__START_AT"
END_AT = "__END_AT"
IS_DELETE = "__is_delete"
#: Position of a change in the landed files: the tie-break between changes of equal sequence.
POSITION = ("_source_file", "_source_row")


@dataclass(frozen=True)
class CdcConfig:
    keys: tuple[str, ...]
    sequence_by: str
    #: The columns the target keeps, in order (keys first); ``except_columns`` are left out.
    columns: tuple[str, ...]
    apply_as_deletes: str = "Op = 'D'"
    except_columns: tuple[str, ...] = ("Op",)
    scd_type: Literal[1, 2] = 1
    #: Type 2 only: a change to these columns starts a version; None means every column.
    track_history_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        missing = [k for k in self.keys if k not in self.columns]
        if missing:
            raise ValueError(f"keys {missing} must be among the columns")
        if self.track_history_columns is not None and self.scd_type != 2:
            raise ValueError("track_history_columns applies to scd_type 2 only")

    @property
    def output_columns(self) -> tuple[str, ...]:
        kept = tuple(c for c in self.columns if c not in self.except_columns)
        return (*kept, *POSITION)

    @property
    def tracked_columns(self) -> tuple[str, ...]:
        if self.track_history_columns is not None:
            return self.track_history_columns
        return tuple(c for c in self.columns if c not in self.keys and c not in self.except_columns)


def _order(config: CdcConfig) -> list[str]:
    return [config.sequence_by, *POSITION]


def flag_deletes(changes: DataFrame, config: CdcConfig) -> DataFrame:
    return changes.withColumn(IS_DELETE, F.coalesce(F.expr(config.apply_as_deletes), F.lit(False)))


def latest_changes(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """The latest change per key, with ``__is_delete``: what type 1 merges into the table."""
    newest_first = Window.partitionBy(*config.keys).orderBy(*(F.col(c).desc() for c in _order(config)))
    return (
        flag_deletes(changes, config)
        .withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .select(*config.output_columns, IS_DELETE)
    )


def current_state(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """SCD type 1: one row per key whose latest change is not a delete."""
    return latest_changes(changes, config).where(~F.col(IS_DELETE)).drop(IS_DELETE)


def _same(left: Sequence[Column], right: Sequence[Column]) -> Column:
    return reduce(
        lambda a, b: a & b, (a.eqNullSafe(b) for a, b in zip(left, right, strict=True)), F.lit(True)
    )


def history(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """SCD type 2: one row per version, with ``__START_AT`` and ``__END_AT`` (null while current).

    A version starts with the first change of a key, after a delete, or when a tracked column
    changes. A change to untracked columns only updates the version it falls in; a delete
    ends the current version.
    """
    in_order = Window.partitionBy(*config.keys).orderBy(*_order(config))
    tracked = config.tracked_columns
    flagged = flag_deletes(changes, config)
    previous = [F.lag(c).over(in_order) for c in tracked]
    previous_delete = F.lag(IS_DELETE).over(in_order)
    first = F.row_number().over(in_order) == 1
    starts = ~F.col(IS_DELETE) & (
        first | F.coalesce(previous_delete, F.lit(False)) | ~_same([F.col(c) for c in tracked], previous)
    )
    versioned = (
        flagged.withColumn("_starts", starts)
        .withColumn(
            "_version",
            F.sum(F.col("_starts").cast("int")).over(in_order.rowsBetween(Window.unboundedPreceding, 0)),
        )
        .where(F.col("_version") > 0)
    )  # changes before a key's first insert or update have no version

    version = [*config.keys, "_version"]
    bounds = versioned.groupBy(*version).agg(
        F.min(F.when(F.col("_starts"), F.col(config.sequence_by))).alias(START_AT),
        F.min(F.when(F.col(IS_DELETE), F.col(config.sequence_by))).alias("_deleted_at"),
    )
    next_start = F.lead(START_AT).over(Window.partitionBy(*config.keys).orderBy("_version"))
    bounds = bounds.withColumn(END_AT, F.coalesce(F.col("_deleted_at"), next_start))

    newest_first = Window.partitionBy(*version).orderBy(*(F.col(c).desc() for c in _order(config)))
    values = (
        versioned.where(~F.col(IS_DELETE))
        .withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
    )
    return values.join(bounds, version).select(*config.output_columns, START_AT, END_AT)
