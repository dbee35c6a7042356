"""Registries for tests: the customers domain, a table whose ``fail`` expectation always fails,
and tables that fail, die or hang (for the Databricks runner)."""

from __future__ import annotations

import os
import time
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


# Tables that go wrong on a cluster: run through the Databricks runner's fake workspace only
# (``gold.dies`` would end any process that ran it).
RAISES, DIES, WAITS, BIG_REPORT = (
    TableName("gold", name) for name in ("raises", "dies", "waits", "big_report")
)
REFUSAL = "the source system refused the request (HTTP 503)"
#: About 600 KB of UTF-8 (two bytes a character): a report larger than one DBFS read.
BIG_METADATA = "é" * 300_000


def build_raises(context: UnitContext) -> UnitResult:
    raise RuntimeError(REFUSAL)


def build_dies(context: UnitContext) -> UnitResult:
    os._exit(3)  # killed: no report, no Pipes "closed" message


def build_waits(context: UnitContext) -> UnitResult:
    """Runs until it is cancelled (two minutes at most)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.1)
    raise TimeoutError("nobody cancelled the run")


def build_big_report(context: UnitContext) -> UnitResult:
    frame = context.spark.createDataFrame([(1, "one")], "id BIGINT, label STRING")
    return overwrite_table(context, frame, {"lakehouse/big": BIG_METADATA})


TROUBLE = Registry(
    domains=(
        Domain(
            "trouble",
            "Units that fail, die, hang or report a lot on the cluster.",
            tuple(
                Table(name, description, build=build)
                for name, description, build in (
                    (RAISES, "Raises an exception.", build_raises),
                    (DIES, "Its process dies.", build_dies),
                    (WAITS, "Waits until it is cancelled.", build_waits),
                    (BIG_REPORT, "Reports about 600 KB of metadata.", build_big_report),
                )
            ),
        ),
    ),
    default_job=Job("trouble_job", "Every table that goes wrong."),
    default_freshness=CUSTOMERS_AND_STRICT.default_freshness,
)


# Operating the lakehouse: a table whose rows a test sets (with a drop, a warn and a fail
# expectation and a primary key), and a table downstream that raises.
NUMBERS, FAILS_DOWNSTREAM = TableName("silver", "numbers"), TableName("gold", "fails_downstream")
#: The rows ``silver.numbers`` writes: (id, label). Tests replace them.
NUMBER_ROWS: list[tuple[int | None, str]] = [(1, "one"), (2, "two")]
NUMBER_EXPECTATIONS = (
    Expectation("id_present", "id IS NOT NULL", Action.DROP, "an id"),
    Expectation("id_not_negative", "id IS NULL OR id >= 0", Action.FAIL, "no negative ids"),
    Expectation("short_label", "length(label) <= 5", Action.WARN, "labels of 5 characters at most"),
)


def build_numbers(context: UnitContext) -> UnitResult:
    frame = context.spark.createDataFrame(list(NUMBER_ROWS), "id BIGINT, label STRING")
    return overwrite_table(context, frame)


def build_fails_downstream(context: UnitContext) -> UnitResult:
    context.tables.read(NUMBERS)
    raise RuntimeError(REFUSAL)


OPERATIONS = Registry(
    domains=(
        Domain(
            "operations",
            "Tables whose failures alert, and whose materialisations publish metrics.",
            (
                Table(
                    NUMBERS,
                    "Numbers a test sets.",
                    build=build_numbers,
                    expectations=NUMBER_EXPECTATIONS,
                    primary_key=("id",),
                ),
                Table(
                    FAILS_DOWNSTREAM,
                    "Reads silver.numbers, then raises.",
                    build=build_fails_downstream,
                    inputs=(NUMBERS,),
                ),
            ),
        ),
    ),
    default_job=Job("operations_job", "Both tables."),
    default_freshness=CUSTOMERS_AND_STRICT.default_freshness,
)
