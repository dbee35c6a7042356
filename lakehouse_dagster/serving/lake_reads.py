"""Reads of a lake table for serving, with deltalake: one pinned version, streamed in batches.

Independent of the Spark engine: the process that loads the warehouse needs no Spark session.
Reads go through ``deltalake.QueryBuilder`` (DataFusion), which streams record batches and
avoids the pyarrow dataset teardown abort of deltalake 1.6 with pyarrow 26 (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

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
