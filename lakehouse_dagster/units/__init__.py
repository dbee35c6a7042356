"""Units of work, one per table. ``ALL_UNITS`` is the registry the Dagster layer builds assets from."""

from __future__ import annotations

from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.units.base import TableUnit
from lakehouse_dagster.units.customers import CUSTOMER_UNITS
from lakehouse_dagster.units.sales import SALES_UNITS

ALL_UNITS: tuple[TableUnit, ...] = (*CUSTOMER_UNITS, *SALES_UNITS)


def unit_for(table: str | TableName) -> TableUnit:
    name = TableName.parse(table) if isinstance(table, str) else table
    for unit in ALL_UNITS:
        if unit.name == name:
            return unit
    known = ", ".join(str(unit.name) for unit in ALL_UNITS)
    raise KeyError(f"no table {name} in this code location; tables are: {known}")
