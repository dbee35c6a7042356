"""What a unit of work reports: plain JSON, the same whichever runner ran it.

The report of a failed unit carries the error and the outcomes of the checks it got to
(a ``fail`` expectation's failed checks), so every runner, in this process, in another
process or on a cluster, shows the same failed checks in the UI.

A partitioned write reports each day's own figures (``partitions``) beside the figures of the
whole write (``metadata``). Tables the unit writes besides its own (its quarantine, the
quality history) are reported as ``related`` tables.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lakehouse_dagster.lake.delta import ColumnInfo
from lakehouse_dagster.quality.checks import CheckOutcome, Severity


@dataclass(frozen=True)
class UnitError:
    kind: str
    message: str
    traceback: str = ""

    @classmethod
    def of(cls, error: BaseException) -> UnitError:
        return cls(type(error).__name__, str(error), "".join(traceback.format_exception(error)))


#: Rows to show as a table: column -> value as text.
Sample = list[dict[str, str | None]]


@dataclass
class RelatedTable:
    """A table the unit wrote (``changed``) or looked at besides its own: its quarantine, the
    quality history."""

    table: str
    changed: bool
    uri: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    columns: list[ColumnInfo] = field(default_factory=list)
    #: Metadata entries that are rows to show as a table (a readable sample of rows, say).
    samples: dict[str, Sample] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RelatedTable:
        return cls(
            table=raw["table"],
            changed=raw["changed"],
            uri=raw.get("uri"),
            metadata=raw.get("metadata") or {},
            columns=[ColumnInfo(**column) for column in raw.get("columns") or []],
            samples=raw.get("samples") or {},
        )


@dataclass
class UnitResult:
    """A unit's report: the table as written (or the error), its metadata and check outcomes."""

    table: str
    uri: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    columns: list[ColumnInfo] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    #: Output column -> [[table, column], ...], from the table's declaration.
    lineage: dict[str, list[list[str]]] = field(default_factory=dict)
    error: UnitError | None = None
    #: A partitioned write: partition key (the day) -> that day's figures (its rows, its
    #: quality counts). ``metadata`` then holds the figures of the whole write.
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Metadata entries that are rows to show as a table (rescued rows, say).
    samples: dict[str, Sample] = field(default_factory=dict)
    related: list[RelatedTable] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> UnitResult:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> UnitResult:
        return cls(
            table=raw["table"],
            uri=raw.get("uri"),
            metadata=raw.get("metadata") or {},
            columns=[ColumnInfo(**column) for column in raw.get("columns") or []],
            checks=[
                CheckOutcome(**{**check, "severity": Severity(check["severity"])})
                for check in raw.get("checks") or []
            ],
            lineage=raw.get("lineage") or {},
            error=UnitError(**raw["error"]) if raw.get("error") else None,
            partitions=raw.get("partitions") or {},
            samples=raw.get("samples") or {},
            related=[RelatedTable.from_dict(related) for related in raw.get("related") or []],
        )
