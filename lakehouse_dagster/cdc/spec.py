"""How a silver table is applied from change data: the ``cdc`` field of its declaration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal

from lakehouse_dagster.declarations.names import check_among, names_tuple
from lakehouse_dagster.declarations.timing import DailyPartitions
from lakehouse_dagster.lake.layout import TableName

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from lakehouse_dagster.lake.delta import DeltaTables

#: Where a change was landed (file, line): the last tie-break between changes.
POSITION = ("_source_file", "_source_row")
#: DMS's operation column, left out of the target unless a feed says otherwise.
_DEFAULT_EXCEPT_COLUMNS = ("Op",)


@dataclass(frozen=True)
class CdcConfig:
    """Delta Live Tables' AUTO CDC arguments.

    ``sequence_by`` orders a key's changes; with several columns they compare in order, as
    DLT's struct does (a DMS commit time, then DMS's change sequence). Changes of a key with
    the same sequence are told apart by their position in the landed files.
    """

    keys: tuple[str, ...]
    sequence_by: tuple[str, ...]
    #: The columns the target keeps, in order (keys first); ``except_columns`` are left out.
    columns: tuple[str, ...]
    #: A SQL condition over a change: true for a delete.
    apply_as_deletes: str = "Op = 'D'"
    except_columns: tuple[str, ...] = _DEFAULT_EXCEPT_COLUMNS
    scd_type: Literal[1, 2] = 1
    #: Type 2 only: a change to these columns starts a version; None means every column.
    track_history_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sequence_by, str):  # one column: ``sequence_by="ts"`` reads naturally
            object.__setattr__(self, "sequence_by", (self.sequence_by,))
        for setting in ("keys", "sequence_by", "columns", "except_columns", "track_history_columns"):
            value = getattr(self, setting)
            if value is not None:
                object.__setattr__(self, setting, names_tuple(value, f"CdcConfig.{setting}"))
        if self.scd_type not in (1, 2):
            raise ValueError(f"CdcConfig.scd_type={self.scd_type!r}: expected 1 or 2")
        if not self.sequence_by:
            raise ValueError("sequence_by needs at least one column")
        self._check_columns()
        if self.track_history_columns is not None and self.scd_type != 2:
            raise ValueError("track_history_columns applies to scd_type 2 only")

    def _check_columns(self) -> None:
        """The keys, the excluded and the tracked columns are among ``columns``: a typo would
        otherwise be kept silently (``op`` for ``Op``: the column leaks into the target) or fail
        the run. The default exclusion (``Op``) may name a column a feed does not have, and the
        sequence columns need not be kept: the registry checks them against the source."""
        if not self.keys:
            raise ValueError("CdcConfig.keys needs at least one column")
        excluded = () if self.except_columns == _DEFAULT_EXCEPT_COLUMNS else self.except_columns
        for setting, names in (
            ("keys", self.keys),
            ("except_columns", excluded),
            ("track_history_columns", self.track_history_columns or ()),
        ):
            check_among(f"CdcConfig.{setting}", names, self.columns)

    @property
    def output_columns(self) -> tuple[str, ...]:
        kept = tuple(c for c in self.columns if c not in self.except_columns)
        return (*kept, *POSITION)

    @property
    def tracked_columns(self) -> tuple[str, ...]:
        if self.track_history_columns is not None:
            return self.track_history_columns
        excluded = {*self.keys, *self.except_columns, *self.sequence_by}
        return tuple(c for c in self.columns if c not in excluded)


@dataclass(frozen=True)
class TouchedPartitions:
    """The days of ``partitions`` that a run's applied changes touch, to be rebuilt."""

    partitions: DailyPartitions
    dates: Callable[[DeltaTables, DataFrame], list[date]]


@dataclass(frozen=True)
class StatePartition:
    """A table stored partitioned by a column computed from its own columns (SQL ``expression``):
    a type 1 table by any such column (an order's month from its time), a type 2 history by
    ``CURRENT_VERSIONS`` only. A day's MERGE then reads only the partitions it may change, so its
    cost does not grow with the table's history (``cdc/merges.py``)."""

    column: str
    expression: str


#: The partition of a type 2 history: whether a version is current (``__END_AT`` null). A
#: delivery whose changes all follow those applied before reads only the current versions.
CURRENT_VERSIONS = StatePartition("is_current", "__END_AT IS NULL")


@dataclass(frozen=True)
class AutoCdc:
    """A silver table applied from the change rows of a bronze table."""

    source: TableName
    config: CdcConfig
    touches: TouchedPartitions | None = None
    partition: StatePartition | None = None

    def __post_init__(self) -> None:
        if self.partition is None:
            return
        if (self.config.scd_type == 2) != (self.partition == CURRENT_VERSIONS):
            raise ValueError(
                f"AutoCdc from {self.source}: a type 2 history is partitioned by CURRENT_VERSIONS "
                "only, and CURRENT_VERSIONS partitions a type 2 history only"
            )
        if self.partition.column in self.config.output_columns:
            raise ValueError(
                f"AutoCdc from {self.source}: partition.column={self.partition.column!r} is one of the "
                "table's columns already; name the computed column otherwise"
            )
