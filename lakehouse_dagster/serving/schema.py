"""The warehouse columns of a served table, from the Arrow schema of its lake table.

Pure: what to create, which columns to add, which changes to refuse. The warehouse dialects
(PostgreSQL, Redshift) share one mapping; only the text type differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from lakehouse_dagster.serving.spec import LOADED_AT, MAX_IDENTIFIER_BYTES


class IncompatibleSchemaError(ValueError):
    """The lake table changed in a way the warehouse table cannot follow; the message names the column."""


@dataclass(frozen=True)
class Column:
    name: str
    #: The type as the warehouse spells it (PostgreSQL's ``format_type``): ``numeric(12,2)``, ``bigint``...
    type: str


_INTEGERS = ("smallint", "integer", "bigint")
_FLOATS = ("real", "double precision")


def warehouse_type(name: str, arrow_type: pa.DataType, text_type: str = "text") -> str:
    """The warehouse type that holds every value of ``arrow_type`` exactly; an error naming the
    column for a type the warehouse does not serve (lists, structs, maps, binary)."""
    t = arrow_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "integer"
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return "bigint"
    if pa.types.is_uint64(t):
        return "numeric(20,0)"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "real"
    if pa.types.is_float64(t):
        return "double precision"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return text_type
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp with time zone" if t.tz is not None else "timestamp without time zone"
    raise IncompatibleSchemaError(
        f"column {name!r} has type {t}, which the warehouse does not serve "
        "(serve scalar columns: numbers, text, booleans, dates and timestamps)"
    )


def warehouse_columns(schema: pa.Schema, text_type: str = "text") -> list[Column]:
    columns = []
    for field in schema:
        if len(field.name.encode()) > MAX_IDENTIFIER_BYTES:
            raise IncompatibleSchemaError(
                f"column {field.name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes, "
                "which the warehouse would truncate"
            )
        if field.name == LOADED_AT:
            raise IncompatibleSchemaError(f"column {LOADED_AT!r} is the warehouse's own: rename it")
        columns.append(Column(field.name, warehouse_type(field.name, field.type, text_type)))
    return columns


def holds(warehouse: str, lake: str) -> bool:
    """Whether a warehouse column of type ``warehouse`` holds every value of a lake column that
    maps to ``lake`` (a narrower integer, a float, a decimal with fewer digits)."""
    if warehouse == lake:
        return True
    if warehouse in _INTEGERS and lake in _INTEGERS:
        return _INTEGERS.index(lake) <= _INTEGERS.index(warehouse)
    if warehouse in _FLOATS and lake in _FLOATS:
        return _FLOATS.index(lake) <= _FLOATS.index(warehouse)
    wide, narrow = _numeric(warehouse), _numeric(lake)
    if wide is not None and lake in _INTEGERS:
        narrow = ({"smallint": 5, "integer": 10, "bigint": 19}[lake], 0)
    if wide is None or narrow is None:
        return False
    return wide[1] >= narrow[1] and wide[0] - wide[1] >= narrow[0] - narrow[1]


def _numeric(type_: str) -> tuple[int, int] | None:
    if not type_.startswith("numeric(") or not type_.endswith(")"):
        return None
    precision, _, scale = type_[len("numeric(") : -1].partition(",")
    return int(precision), int(scale or 0)


@dataclass(frozen=True)
class SchemaPlan:
    """How the warehouse table follows the lake table: columns to add (at the end)."""

    add: tuple[Column, ...]


def plan_schema(table: str, source: str, existing: list[Column], wanted: list[Column]) -> SchemaPlan:
    """Compare the warehouse table's columns (``existing``, without ``_loaded_at``) with the lake
    table's. A new lake column is added; a column whose type the warehouse cannot hold, or a
    column the lake no longer has, is an error naming it."""
    have = {column.name: column.type for column in existing}
    want = {column.name: column.type for column in wanted}
    for name, type_ in want.items():
        if name in have and not holds(have[name], type_):
            raise IncompatibleSchemaError(
                f"{table}: column {name!r} is {have[name]} in the warehouse but {type_} in {source}; "
                f"the warehouse cannot hold the new values. Drop {table} in the warehouse to reload it "
                "with the new schema, or change the column's type back in the lake."
            )
    gone = [name for name in have if name not in want]
    if gone:
        raise IncompatibleSchemaError(
            f"{table}: column {gone[0]!r} is in the warehouse but no longer in {source}; "
            f"readers of {table} would silently get nulls. Drop the column in the warehouse "
            f"(ALTER TABLE {table} DROP COLUMN {gone[0]}) or bring it back in the lake."
        )
    return SchemaPlan(add=tuple(column for column in wanted if column.name not in have))
