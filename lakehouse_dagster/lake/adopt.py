"""Staged Parquet files committed to a Delta table as they are, without a copy (delta-rs).

An append through ``write_deltalake`` reads the staged files and writes them again; a staged
file whose columns are the table's can instead be moved into the table's folder and committed
with an ``add`` action whose statistics come from its Parquet footer. Delta readers read
columns by name, so only the names and types must agree; and the table must take files as they
are (``plain_table``): a constrained table, or one partitioned otherwise than the staged files,
gets the ordinary, validated write.

A file moved in but never committed (the process died, or another writer committed the same
batch first) is a stray file: no reader sees it, and a full ``VACUUM`` deletes it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse_dagster.lake.files import delete_file, file_size, list_parquet, move_file

#: Text statistics longer than this are left out (a reader then cannot skip by the column).
_LONGEST_TEXT_STATISTIC = 256
#: Decimals with more digits than a double keeps exactly have no statistics.
_EXACT_DECIMAL_DIGITS = 15


#: How Hive-style folders name a null partition value.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


class StagedFile:
    """One staged Parquet file: where it is, its footer, its partition values (from its
    ``column=value`` folders), and its Delta ``add`` action once moved."""

    def __init__(self, uri: str, partition_values: dict[str, str | None] | None = None) -> None:
        self.uri = uri
        self.metadata = pq.read_metadata(uri)
        self.size = file_size(uri)
        self.partition_values = partition_values or {}

    def folder(self) -> str:
        """The file's folder in the table, relative: one ``column=value`` level per partition column."""
        return "".join(
            f"{column}={quote(NULL_PARTITION if value is None else value, safe='')}/"
            for column, value in self.partition_values.items()
        )

    def add_action(self, relative_path: str) -> Any:
        from deltalake.transaction import AddAction

        return AddAction(
            path=relative_path,
            size=self.size,
            partition_values=self.partition_values,
            modification_time=int(time.time() * 1000),
            data_change=True,
            stats=statistics_json(self.metadata),
        )


def adoptable(table_schema: pa.Schema, staged_schema: pa.Schema) -> bool:
    """Whether files of ``staged_schema`` can be committed to a table of ``table_schema`` as they
    are: the same column names with the same types (order and nullability aside)."""
    table_types = {field.name: field.type for field in table_schema}
    staged_types = {field.name: field.type for field in staged_schema}
    return table_types.keys() == staged_types.keys() and all(
        _same_type(table_types[name], staged_types[name]) for name in table_types
    )


def plain_table(table: Any, partition_by: Sequence[str] = (), *, nulls_checked: bool = False) -> bool:
    """Whether a Delta table (``deltalake.DeltaTable``) takes files as they are: partitioned by
    ``partition_by`` exactly (the partition values an adopted file carries), without CHECK
    constraints, column mapping, generated columns, invariants, or required columns unless the
    caller checks them (``holds_no_nulls``): an adopted file is not validated."""
    metadata = table.metadata()
    configuration = metadata.configuration or {}
    if list(metadata.partition_columns) != list(partition_by):
        return False
    if any(key.startswith("delta.constraints.") for key in configuration):
        return False
    if configuration.get("delta.columnMapping.mode", "none") != "none":
        return False
    return all(
        (field.nullable or nulls_checked)
        and not any(key.startswith(_VALIDATED_FIELD) for key in (field.metadata or {}))
        for field in table.schema().fields
    )


#: Column metadata that makes the Delta writer validate or compute a column.
_VALIDATED_FIELD = ("delta.generationExpression", "delta.invariants", "delta.identity")


def holds_no_nulls(metadata: pq.FileMetaData, columns: Sequence[str]) -> bool:
    """Whether a file's footer shows no null in any of the flat ``columns``: each column's every
    row group has statistics with a null count of 0. A nested or unknown column is not shown."""
    chunks = [
        metadata.row_group(group).column(index)
        for group in range(metadata.num_row_groups)
        for index in range(metadata.num_columns)
    ]
    shown = {chunk.path_in_schema for chunk in chunks}
    return all(column in shown for column in columns) and all(
        chunk.statistics is not None and chunk.statistics.has_null_count and chunk.statistics.null_count == 0
        for chunk in chunks
        if chunk.path_in_schema in columns
    )


def staged_files(staged_uri: str, partition_by: Sequence[str] = ()) -> list[StagedFile]:
    """The staged files; partitioned, with the values their ``column=value`` folders name."""
    prefix = staged_uri.rstrip("/") + "/"
    return [
        StagedFile(uri, _partition_values(uri.removeprefix(prefix), partition_by) if partition_by else None)
        for uri in list_parquet(staged_uri)
    ]


def _partition_values(relative: str, partition_by: Sequence[str]) -> dict[str, str | None]:
    """The values a staged file's folders give its partition columns (a file with no rows, written
    for its columns alone, has no folders: its values are null)."""
    folders = dict(part.split("=", 1) for part in relative.split("/")[:-1] if "=" in part)
    values: dict[str, str | None] = {}
    for column in partition_by:
        value = folders.get(column)
        values[column] = None if value in (None, NULL_PARTITION) else unquote(value)
    return values


def move_into_table(table_uri: str, files: list[StagedFile]) -> list[str]:
    """Move the files into the table's folder under new unique names; their relative paths."""
    paths = []
    for staged in files:
        relative = f"{staged.folder()}part-00000-{uuid.uuid4()}-c000.parquet"
        move_file(staged.uri, f"{table_uri.rstrip('/')}/{relative}")
        paths.append(relative)
    return paths


class MovedFiles:
    """Staged files moved into a table's folder, not committed yet: their ``add`` actions, the
    commit's metrics, and their deletion when the commit does not land."""

    def __init__(self, table_uri: str, files: list[StagedFile]) -> None:
        self.table_uri = table_uri
        self.files = files
        self.paths = move_into_table(table_uri, files)

    def add_actions(self) -> list[Any]:
        return [file.add_action(path) for file, path in zip(self.files, self.paths, strict=True)]

    def metrics(self) -> dict[str, Any]:
        """``custom_metadata`` for the commit: its operation metrics, named as delta-rs names them."""
        rows = sum(file.metadata.num_rows for file in self.files)
        return {"operationMetrics": {"num_added_rows": rows, "num_added_files": len(self.paths)}}

    def delete(self) -> None:
        for path in self.paths:
            delete_file(f"{self.table_uri.rstrip('/')}/{path}")


def statistics_json(metadata: pq.FileMetaData) -> str:
    """The Delta statistics of a flat Parquet file, from its footer: rows, and per column the
    nulls and, where every row group has them and they are exact, the minimum and maximum."""
    minimums: dict[str, Any] = {}
    maximums: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for index, field in _flat_columns(metadata.schema.to_arrow_schema()):
        chunks = [
            metadata.row_group(group).column(index).statistics for group in range(metadata.num_row_groups)
        ]
        if not chunks or any(stats is None or not stats.has_null_count for stats in chunks):
            continue
        nulls[field.name] = sum(stats.null_count for stats in chunks)
        bounded = [stats for stats in chunks if stats.has_min_max]
        if len(bounded) != len([stats for stats in chunks if stats.num_values > 0]) or not bounded:
            continue
        try:
            low = _statistic(field.type, min(_value(field.type, stats.min) for stats in bounded))
            high = _statistic(field.type, max(_value(field.type, stats.max) for stats in bounded))
        except OverflowError:  # a bound Python cannot hold (a timestamp past 9999): none written
            continue
        if low is not None and high is not None:
            minimums[field.name], maximums[field.name] = low, high
    return json.dumps(
        {"numRecords": metadata.num_rows, "minValues": minimums, "maxValues": maximums, "nullCount": nulls}
    )


def _flat_columns(schema: pa.Schema) -> Iterator[tuple[int, pa.Field]]:
    """The top-level columns that are one Parquet column each, with that column's index (a
    struct or list column spans several, and has no statistics here)."""
    index = 0
    for field in schema:
        leaves = _leaves(field.type)
        if leaves == 1 and not pa.types.is_nested(field.type):
            yield index, field
        index += leaves


def _leaves(arrow_type: pa.DataType) -> int:
    if pa.types.is_nested(arrow_type):
        return sum(_leaves(arrow_type.field(i).type) for i in range(arrow_type.num_fields))
    return 1


def _value(arrow_type: pa.DataType, value: Any) -> Any:
    """A footer bound as a comparable Python value (timestamps come back naive or aware)."""
    if pa.types.is_timestamp(arrow_type) and isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _statistic(arrow_type: pa.DataType, value: Any) -> Any:
    """A bound as Delta writes it in JSON, or None where this module writes none."""
    if pa.types.is_integer(arrow_type):
        return int(value)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return value if isinstance(value, str) and len(value) <= _LONGEST_TEXT_STATISTIC else None
    if pa.types.is_date(arrow_type) and isinstance(value, date):
        return value.isoformat()
    if pa.types.is_timestamp(arrow_type) and isinstance(value, datetime):
        # Milliseconds, cut like delta-rs's own writer; readers allow for the cut.
        utc = value.astimezone(UTC)
        millis = utc.microsecond // 1000
        return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}Z" if millis else "Z")
    if pa.types.is_decimal(arrow_type) and isinstance(value, Decimal):
        return float(value) if arrow_type.precision <= _EXACT_DECIMAL_DIGITS else None
    return None  # booleans, floating point (NaN), binary, nested


def _same_type(left: pa.DataType, right: pa.DataType) -> bool:
    if left == right:
        return True
    text = (pa.string(), pa.large_string(), pa.string_view())
    return left in text and right in text
