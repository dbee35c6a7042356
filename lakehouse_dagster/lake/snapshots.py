"""Engine-free access to lake tables with deltalake (delta-rs), for the processes that need no
Spark session: serving reads (one pinned version, streamed in batches), the catalog's view of a
Delta log, the CLI's queries and the local metrics appends. The Spark engine's reads and writes
are in ``delta.py``; no module outside ``lake/`` opens a Delta log.

Reads go through ``deltalake.QueryBuilder`` (DataFusion), which streams record batches and
avoids the pyarrow dataset teardown abort of deltalake 1.6 with pyarrow 26 (DESIGN.md §3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import deltalake
import pyarrow as pa

from lakehouse_dagster.serving.spec import DateRange


class LakeTableMissingError(LookupError):
    def __init__(self, name: str, uri: str) -> None:
        super().__init__(f"{name} does not exist yet at {uri}; materialise it before serving it")


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _plain_strings(schema: pa.Schema) -> pa.Schema:
    """DataFusion reads text as ``string_view``; the warehouse writers want plain strings."""
    return pa.schema(
        [field.with_type(pa.string()) if pa.types.is_string_view(field.type) else field for field in schema]
    )


class LakeSnapshot:
    """One version of a lake table: the latest when it is opened, and the same for every read."""

    def __init__(self, name: str, uri: str, storage_options: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.uri = uri
        options = dict(storage_options or {})
        if not deltalake.DeltaTable.is_deltatable(uri, storage_options=options or None):
            raise LakeTableMissingError(name, uri)
        self._table = deltalake.DeltaTable(uri, storage_options=options or None)
        self.version: int = self._table.version()

    @property
    def schema(self) -> pa.Schema:
        return _plain_strings(pa.schema(self._table.schema()))

    def _where(self, column: str | None, window: DateRange | None) -> str:
        if window is None:
            return ""
        if column is None:
            raise ValueError(f"{self.name} is not partitioned: it is served whole, not by date range")
        quoted = _quoted(column)
        start, end = window.start.isoformat(), window.end.isoformat()
        return f" WHERE {quoted} >= DATE '{start}' AND {quoted} < DATE '{end}'"

    def _query(self, sql: str) -> pa.RecordBatchReader:
        builder = deltalake.QueryBuilder().register("lake_table", self._table)
        return pa.RecordBatchReader.from_stream(builder.execute(sql))

    def rows(self, column: str | None = None, window: DateRange | None = None) -> pa.RecordBatchReader:
        """The table's rows (of ``window`` when given), in batches, with the table's column order."""
        schema = self.schema
        select = ", ".join(_quoted(field.name) for field in schema)
        reader = self._query(f"SELECT {select} FROM lake_table{self._where(column, window)}")

        def batches():
            for batch in reader:
                yield batch.cast(schema) if batch.schema != schema else batch

        return pa.RecordBatchReader.from_batches(schema, batches())

    def count(self, column: str | None = None, window: DateRange | None = None) -> int:
        result = self._query(f"SELECT count(*) AS n FROM lake_table{self._where(column, window)}").read_all()
        return int(result.column("n")[0].as_py())

    def counts_by_day(self, column: str, window: DateRange | None = None) -> dict[date, int]:
        """Rows per day of ``column`` (in ``window`` when given)."""
        quoted = _quoted(column)
        result = self._query(
            f"SELECT {quoted} AS day, count(*) AS n FROM lake_table{self._where(column, window)} GROUP BY 1"
        ).read_all()
        return dict(zip(result.column("day").to_pylist(), result.column("n").to_pylist(), strict=True))


@dataclass(frozen=True)
class DeltaLog:
    """What the catalog needs from a table's Delta log."""

    #: (name, Delta type as JSON) in schema order, partition columns included.
    fields: tuple[tuple[str, Any], ...]
    partition_columns: tuple[str, ...]
    min_reader_version: int
    min_writer_version: int
    configuration: tuple[tuple[str, str], ...] = ()

    @classmethod
    def read(cls, uri: str, storage_options: Mapping[str, str] | None = None) -> DeltaLog:
        table = deltalake.DeltaTable(uri, storage_options=dict(storage_options or {}) or None)
        schema = json.loads(table.schema().to_json())
        protocol = table.protocol()
        metadata = table.metadata()
        return cls(
            fields=tuple((field["name"], field["type"]) for field in schema["fields"]),
            partition_columns=tuple(metadata.partition_columns),
            min_reader_version=protocol.min_reader_version,
            min_writer_version=protocol.min_writer_version,
            configuration=tuple(sorted((metadata.configuration or {}).items())),
        )


def is_delta_table(uri: str) -> bool:
    return deltalake.DeltaTable.is_deltatable(uri)


def query(sql: str, **tables: str) -> pa.Table:
    """SQL over Delta tables by path (``name=uri``), with delta-rs's engine (DataFusion).

    Not ``DeltaTable.to_pandas()``: its pyarrow dataset may still hold a Python filesystem when
    the interpreter exits, and freeing it then aborts the process (seen with pyarrow 26).
    """
    builder = deltalake.QueryBuilder()
    for name, uri in tables.items():
        builder = builder.register(name, deltalake.DeltaTable(uri))
    return pa.table(builder.execute(sql).read_all())


def append_rows(uri: str, rows: pa.Table) -> None:
    """Append ``rows`` in one commit, creating the table on the first append."""
    deltalake.write_deltalake(uri, rows, mode="append")
