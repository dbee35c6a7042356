"""The ``serving`` field of a table's declaration: load the table into the warehouse."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse_dagster.declarations.table import Table

#: The warehouse schema of every served table, and the first part of its asset key.
SERVING_SCHEMA = "serving"
#: The warehouse's own columns, added to every served table.
LOADED_AT = "_loaded_at"
#: PostgreSQL truncates longer identifiers silently; Redshift allows 127 bytes.
MAX_IDENTIFIER_BYTES = 63
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Serving:
    """Serve the table in the warehouse as ``serving.<name>`` (by default the table's own name).

    A daily-partitioned table is replaced a range of days at a time; any other table is
    replaced whole. Either way in one transaction: readers see the old rows or the new ones.
    """

    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None:
            check_identifier(self.name, "serving name")


def check_identifier(name: str, what: str) -> str:
    if not _NAME.match(name) or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"{what} {name!r} must be lower-case letters, digits and underscores, starting with a "
            f"letter, at most {MAX_IDENTIFIER_BYTES} bytes"
        )
    return name


@dataclass(frozen=True)
class ServedTable:
    """What a load needs to know about a served table, resolved from its declaration."""

    #: Name in the ``serving`` schema.
    name: str
    #: The lake table it is loaded from, ``layer.table``.
    source: str
    description: str = ""
    primary_key: tuple[str, ...] = ()
    #: The date column of a daily-partitioned table: loads replace ranges of it.
    partition_column: str | None = None
    column_docs: tuple[tuple[str, str], ...] = ()

    @property
    def qualified(self) -> str:
        return f"{SERVING_SCHEMA}.{self.name}"

    @property
    def key_path(self) -> list[str]:
        """The Dagster asset key path: ``["serving", "serving.daily_sales"]`` (see ``TableName.key_path``)."""
        return [SERVING_SCHEMA, self.qualified]

    @property
    def op_name(self) -> str:
        """The name of the step that loads it: ``serving__daily_sales``."""
        return f"{SERVING_SCHEMA}__{self.name}"

    @classmethod
    def of(cls, table: Table) -> ServedTable:
        if table.serving is None:
            raise ValueError(f"{table.name} is not served: its declaration has no serving")
        return cls(
            name=table.serving.name or table.name.table,
            source=str(table.name),
            description=table.description,
            primary_key=table.primary_key,
            partition_column=table.partitions.column if table.partitions is not None else None,
            column_docs=tuple(table.column_docs.items()),
        )


@dataclass(frozen=True)
class DateRange:
    """The rows of a served table whose partition column is in [start, end)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty date range [{self.start}, {self.end})")

    def label(self) -> str:
        return f"[{self.start}, {self.end})"
