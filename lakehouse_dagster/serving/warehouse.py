"""The warehouse seam's interface: load a served table, and read back what the checks need."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg
import pyarrow as pa

from lakehouse_dagster.serving.spec import DateRange, ServedTable

#: The warehouse's record of every load, in the serving schema.
LOADS_TABLE = "_loads"


class WarehouseLoadError(ValueError):
    """The warehouse refused a load's rows (a value it cannot hold, a duplicate key)."""


class WarehouseUnavailableError(ConnectionError):
    """The warehouse cannot be reached; the message says how to start or configure it."""


@dataclass(frozen=True)
class LoadResult:
    table: str
    rows: int
    #: The warehouse's own time of the load's transaction, the ``_loaded_at`` of its rows.
    loaded_at: datetime
    window: DateRange | None
    created: bool
    columns_added: tuple[str, ...]


@dataclass(frozen=True)
class LoadRecord:
    """The latest load of a date range (or of the whole table: no range)."""

    start: date | None
    end: date | None
    loaded_at: datetime

    def covers(self, day: date) -> bool:
        return self.start is None or (self.start <= day and self.end is not None and day < self.end)


class Warehouse(dg.ConfigurableResource, ABC):
    """Where served tables are loaded: every load replaces its rows in one transaction."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """The asset kind shown in the UI (``postgres``, ``redshift``)."""

    @abstractmethod
    def load(
        self,
        table: ServedTable,
        rows: pa.RecordBatchReader,
        *,
        window: DateRange | None,
        source_version: int,
        run_id: str,
    ) -> LoadResult:
        """Replace the rows of ``window`` (a partitioned table) or the whole table with ``rows``,
        creating the table or adding new columns first. Atomic: on any error nothing changes."""

    @abstractmethod
    def row_count(self, table: ServedTable) -> int | None:
        """Rows in the warehouse table; None if it does not exist."""

    @abstractmethod
    def counts_by_day(self, table: ServedTable, window: DateRange | None = None) -> dict[date, int]:
        """Rows per day of the partition column (in ``window`` when given)."""

    @abstractmethod
    def loads(self, table: ServedTable) -> list[LoadRecord]:
        """The latest load of each range (or of the whole table) recorded for ``table``."""

    def loaded_at(self, table: ServedTable, day: date | None = None) -> datetime | None:
        """When the rows of ``day`` (or the whole table) were last loaded; None if never."""
        return latest_load(self.loads(table), day)


def latest_load(loads: list[LoadRecord], day: date | None = None) -> datetime | None:
    """The time of the latest of ``loads`` that covers ``day`` (any, without a day)."""
    return max((load.loaded_at for load in loads if day is None or load.covers(day)), default=None)
