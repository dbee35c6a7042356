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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pyspark.sql import SparkSession

from lakehouse_dagster.lake.delta import ColumnInfo, DeltaTables
from lakehouse_dagster.lake.layout import TableName


class Severity(StrEnum):
    WARN = "WARN"
    ERROR = "ERROR"


@dataclass(frozen=True)
class CheckSpec:
    """A check a table declares; its outcome comes from the table's unit."""

    name: str
    description: str
    severity: Severity = Severity.ERROR


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    severity: Severity
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionWindow:
    """A range of daily partitions: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date


@dataclass(frozen=True)
class UnitRequest:
    table: str
    run_id: str = "manual"
    as_of_date: date | None = None
    partition: PartitionWindow | None = None

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


@dataclass
class UnitContext:
    request: UnitRequest
    tables: DeltaTables
    log: logging.Logger

    @property
    def spark(self) -> SparkSession:
        return self.tables.spark


@dataclass(frozen=True)
class TableUnit:
    """A table's definition: its inputs, its unit of work and the checks it reports."""

    name: TableName
    description: str
    group: str
    run: Callable[[UnitContext], UnitResult]
    inputs: tuple[TableName, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    uses_as_of_date: bool = False


def describe(
    tables: DeltaTables, name: TableName, metadata: dict[str, Any], checks: list[CheckOutcome]
) -> UnitResult:
    """A unit's result for ``name`` as written: row count, version, location and schema."""
    uri = tables.uri(name)
    return UnitResult(
        table=str(name),
        uri=uri,
        metadata={
            "dagster/row_count": tables.read(name).count(),
            "lakehouse/delta_version": tables.version(name),
            **metadata,
        },
        columns=tables.columns(name),
        checks=checks,
    )


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
