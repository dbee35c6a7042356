"""Readable samples of rows for the UI: a few rows as text, where each came from and why.

A landed row's position is shown as its file below the landing zone and its line
(``customers/customers_00003.csv:47``), not as the absolute path the lake keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DateType,
    MapType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from lakehouse_dagster.ingest.sources import (
    BATCH_ID,
    INGESTED_AT,
    SOURCE_FILE,
    SOURCE_FILE_MODIFIED_AT,
    SOURCE_ROW,
)
from lakehouse_dagster.units.report import Sample

#: Rows in a sample, at most.
SAMPLE_ROWS = 10
#: Characters of a value shown, at most.
VALUE_CHARS = 80
#: Bookkeeping columns a sample leaves out (the position is shown as ``source``).
BOOKKEEPING = frozenset({SOURCE_FILE, SOURCE_ROW, SOURCE_FILE_MODIFIED_AT, INGESTED_AT, BATCH_ID})


def relative_to(uri: str, root: str) -> str:
    """``uri`` below ``root`` (a landed file below the landing zone); itself if outside it."""
    prefix = root.rstrip("/") + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


def position(uri: str | None, line: Any, landing: str) -> str:
    """``customers/customers_00003.csv:47``."""
    return f"{relative_to(uri or '?', landing)}:{line}"


def readable_position_key(key: str, landing: str) -> str:
    """A sample key of ``(_source_file, _source_row)`` (``<absolute path>|47``) made readable."""
    uri, separator, line = key.rpartition("|")
    return position(uri, line, landing) if separator else key


def text(value: Any) -> str | None:
    """A value as text for the UI, shortened."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    shown = str(value)
    return shown if len(shown) <= VALUE_CHARS else shown[: VALUE_CHARS - 1] + "…"


def readable_rows(
    frame: DataFrame,
    *,
    landing: str,
    first: Sequence[str] = (),
    leave_out: Iterable[str] = (),
    limit: int = SAMPLE_ROWS,
) -> Sample:
    """Up to ``limit`` rows of ``frame``: ``source`` (file and line, when the rows carry them),
    the ``first`` columns, then the others but bookkeeping and ``leave_out``."""
    hidden = BOOKKEEPING | set(leave_out)
    columns = list(first) + [c for c in frame.columns if c not in hidden and c not in first]
    has_position = SOURCE_FILE in frame.columns and SOURCE_ROW in frame.columns
    sample: Sample = []
    for row in as_text_times(frame).limit(limit).collect():
        values = row.asDict()
        shown: dict[str, str | None] = {}
        if has_position:
            shown["source"] = position(values[SOURCE_FILE], values[SOURCE_ROW], landing)
        shown.update({column: text(values[column]) for column in columns})
        sample.append(shown)
    return sample


_TIMES = (DateType, TimestampType, TimestampNTZType)


def _holds_time(data_type: DataType) -> bool:
    if isinstance(data_type, _TIMES):
        return True
    if isinstance(data_type, ArrayType):
        return _holds_time(data_type.elementType)
    if isinstance(data_type, MapType):
        return _holds_time(data_type.keyType) or _holds_time(data_type.valueType)
    if isinstance(data_type, StructType):
        return any(_holds_time(field.dataType) for field in data_type.fields)
    return False


def _as_text(name: str, data_type: DataType) -> Column:
    column = F.col(f"`{name}`")
    shown = column.cast("string") if isinstance(data_type, _TIMES) else F.to_json(column)
    return shown.alias(name)


def as_text_times(frame: DataFrame) -> DataFrame:
    """``frame`` with its dates and times (and values holding them) as text, made by the engine:
    Python's ``datetime`` holds years 1 to 9999 only, and a sample must never fail a build."""
    fields = frame.schema.fields
    if not any(_holds_time(field.dataType) for field in fields):
        return frame
    return frame.select(
        *(_as_text(f.name, f.dataType) if _holds_time(f.dataType) else F.col(f"`{f.name}`") for f in fields)
    )
