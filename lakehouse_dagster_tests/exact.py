"""Rows compared bit for bit: a decimal with its scale, a double by its bits, structs and arrays inside."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from pyspark.sql import DataFrame, Row


def canonical(value: object) -> object:
    """A value that compares equal only to the same bits: ``Decimal("1.50") != Decimal("1.5")`` here,
    and ``0.1 + 0.2 != 0.3``; a null stays None."""
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, float):
        return ("double", value.hex())
    if isinstance(value, Row):
        return tuple((name, canonical(value[name])) for name in value.__fields__)
    if isinstance(value, Mapping):
        return tuple((name, canonical(item)) for name, item in value.items())
    if isinstance(value, list | tuple):
        return tuple(canonical(item) for item in value)
    return value


def exact_rows(records: Iterable[Mapping[str, object]], columns: Sequence[str]) -> list[tuple]:
    """The records' ``columns``, canonical, sorted."""
    return sorted((tuple(canonical(record[c]) for c in columns) for record in records), key=repr)


def frame_rows(frame: DataFrame, columns: Sequence[str] | None = None) -> list[tuple]:
    """Every row of ``frame`` (its ``columns``, by default all), canonical, sorted."""
    columns = list(columns or frame.columns)
    return exact_rows((row.asDict() for row in frame.select(*columns).collect()), columns)
