"""Registries for tests: the customers domain, and a table whose ``fail`` expectation always fails."""

from __future__ import annotations

from datetime import timedelta

from lakehouse_dagster.declarations.table import Domain, Registry, Table
from lakehouse_dagster.declarations.timing import Freshness, Job
from lakehouse_dagster.domains.customers.tables import DOMAIN as CUSTOMERS
from lakehouse_dagster.domains.customers.tables import SILVER_CUSTOMERS
from lakehouse_dagster.domains.customers.transforms import customer_segments
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.writes import overwrite_table

STRICT_SEGMENTS = TableName("gold", "strict_segments")


def build_strict_segments(context: UnitContext) -> UnitResult:
    return overwrite_table(context, customer_segments(context.tables.read(SILVER_CUSTOMERS)))


STRICT = Domain(
    "strict",
    "A table whose fail expectation fails on any data.",
    (
        Table(
            STRICT_SEGMENTS,
            "Segments that must have fewer than no customers.",
            build=build_strict_segments,
            inputs=(SILVER_CUSTOMERS,),
            expectations=(
                Expectation("no_customers", "customers < 0", Action.FAIL, "impossible on purpose"),
                Expectation("counts_customers", "customers > 0", Action.WARN, "every row counts customers"),
            ),
        ),
    ),
)

CUSTOMERS_AND_STRICT = Registry(
    domains=(CUSTOMERS, STRICT),
    default_job=Job("all_job", "Every table."),
    default_freshness=Freshness(warn_after=timedelta(hours=26), fail_after=timedelta(hours=50)),
)
