"""What a unit of work is asked to do: plain data, the same in every runner."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lakehouse_dagster.declarations.maintenance import Maintenance


@dataclass(frozen=True)
class PartitionWindow:
    """A range of daily partitions: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(
                f"the partition range from {self.start} to {self.end} holds no day: its end is the "
                "day after its last (exclusive)"
            )

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]

    def label(self) -> str:
        """``2026-11-01..2026-11-05`` (both included), or the one day."""
        return self.start.isoformat() if self.last == self.start else f"{self.start}..{self.last}"


def today_utc() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class UnitRequest:
    """One table's materialisation, or its maintenance: the run, its logical date, and what to
    read or write.

    ``as_of_date`` is fixed when the request is made, so a run that crosses midnight uses
    one date throughout. ``files`` names the landing files a bronze table ingests (all new
    files of its folder when None). ``maintenance``, when given, asks for the table's
    maintenance instead of its build: the resolved declaration (the registry's defaults
    applied where the Dagster side resolved them)."""

    table: str
    as_of_date: date
    run_id: str = "manual"
    partition: PartitionWindow | None = None
    files: tuple[str, ...] | None = None
    #: With ``files``: a named file that no longer exists is skipped and reported, not an error.
    skip_missing_files: bool = False
    maintenance: Maintenance | None = None
    #: A CDC table that touches partitions: the newest progress record (``applied_at`` in
    #: microseconds since the epoch) whose touched dates a materialisation reported; the unit
    #: reports those of later records again (a run that died after recording its progress).
    #: None (a unit run outside Dagster): only the run's own dates are reported.
    touched_reported_through: int | None = None

    def require_partition(self) -> PartitionWindow:
        if self.partition is None:
            raise ValueError(f"{self.table} is partitioned by day: give a partition (start and end date)")
        return self.partition

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (dates as ISO strings)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> UnitRequest:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> UnitRequest:
        partition = raw.get("partition")
        return cls(
            table=raw["table"],
            as_of_date=date.fromisoformat(raw["as_of_date"]),
            run_id=raw.get("run_id") or "manual",
            partition=PartitionWindow(
                date.fromisoformat(partition["start"]), date.fromisoformat(partition["end"])
            )
            if partition
            else None,
            files=tuple(raw["files"]) if raw.get("files") is not None else None,
            skip_missing_files=bool(raw.get("skip_missing_files", False)),
            maintenance=Maintenance.from_dict(raw["maintenance"]) if raw.get("maintenance") else None,
            touched_reported_through=int(raw["touched_reported_through"])
            if raw.get("touched_reported_through") is not None
            else None,
        )
