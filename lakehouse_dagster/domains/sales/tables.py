"""The sales domain: AWS DMS files -> bronze -> silver (AUTO CDC) -> facts by order date -> gold marts.

Naming: bronze and silver tables carry the ``sales_`` prefix of their source database;
gold marts are named for what they serve. Every fact about a table is declared here; the
transforms are pure functions in ``transforms.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_dagster.cdc.apply import cdc_expectations, structural_expectations
from lakehouse_dagster.cdc.spec import (
    CURRENT_VERSIONS,
    POSITION,
    AutoCdc,
    CdcConfig,
    StatePartition,
    TouchedPartitions,
)
from lakehouse_dagster.cdc.transforms import END_AT, START_AT
from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.declarations.timing import DailyPartitions, Job
from lakehouse_dagster.ingest.sources import FileSource
from lakehouse_dagster.joins import matching
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality import rules
from lakehouse_dagster.quality.expectations import Action, Expectation, passing
from lakehouse_dagster.quality.table_checks import TableCheck, references, row_count_anomaly
from lakehouse_dagster.serving.spec import Serving
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.writes import overwrite_table, replace_partitions

from . import transforms as sales
from .money import EXACT, PRICE, PRICE_TYPE, ROUNDED, USD_PER_UNIT, Money
from .source import (
    CHANGE_SEQUENCE,
    COLUMN_DOCS,
    CUSTOMER_HISTORY_COLUMNS,
    DMS_FOLDER,
    ORDER_STATUSES,
    SEQUENCE,
    SEQUENCE_BY,
    TABLE_COLUMNS,
    TABLE_KEYS,
)

#: The partition column of the facts and of daily sales.
ORDER_DATE = "order_date"
#: The partition column of the orders' current state: the first day of the order's month. A day's
#: changes name one or two months, and a month's files are large enough to read quickly.
ORDER_MONTH = "order_month"
COLUMN_TYPES = {
    SEQUENCE: "TIMESTAMP",
    "customer_id": "BIGINT",
    "product_id": "BIGINT",
    "order_id": "BIGINT",
    "line_number": "INT",
    "quantity": "INT",
    "price": PRICE_TYPE,
    "unit_price": PRICE_TYPE,
    "order_ts": "TIMESTAMP",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
}


def bronze_table(source: str) -> TableName:
    return TableName("bronze", f"sales_{source}")


SALES_CUSTOMERS = TableName("silver", "sales_customers")
SALES_CUSTOMERS_HISTORY = TableName("silver", "sales_customers_history")
SALES_PRODUCTS = TableName("silver", "sales_products")
SALES_ORDERS = TableName("silver", "sales_orders")
SALES_ORDER_ITEMS = TableName("silver", "sales_order_items")
ORDER_FACTS = TableName("silver", "sales_order_facts")
ORDER_ITEM_FACTS = TableName("silver", "sales_order_item_facts")
DAILY_SALES = TableName("gold", "daily_sales")
CUSTOMER_360 = TableName("gold", "customer_360")
PRODUCT_PERFORMANCE = TableName("gold", "product_performance")

#: The money columns of each table (amounts of a currency): each is a DECIMAL of its declared type
#: (README: money rules), and its column doc says so. Quarantine tables have their table's.
MONEY_COLUMNS: dict[TableName, dict[str, Money]] = {
    bronze_table("products"): {"price": PRICE},
    bronze_table("order_items"): {"unit_price": PRICE},
    SALES_PRODUCTS: {"price": PRICE},
    SALES_ORDER_ITEMS: {"unit_price": PRICE},
    ORDER_FACTS: {"order_amount": EXACT},
    ORDER_ITEM_FACTS: {"unit_price": PRICE, "line_amount": EXACT},
    DAILY_SALES: {"revenue": EXACT, "average_order_value": ROUNDED},
    CUSTOMER_360: {"lifetime_revenue_usd": ROUNDED, "average_order_value_usd": ROUNDED},
    PRODUCT_PERFORMANCE: {"revenue_usd": ROUNDED},
}


def money_docs(table: TableName, docs: Mapping[str, str]) -> dict[str, str]:
    """``docs`` with the money rule of each of the table's money columns."""
    money = MONEY_COLUMNS.get(table, {})
    return {**docs, **{column: kind.doc(docs.get(column, "")) for column, kind in money.items()}}


SALES_FACTS_JOB = Job(
    "sales_facts_job",
    "Rebuild the facts and daily sales of a day or a range of days (one run per range).",
)
ORDER_DATES = DailyPartitions(
    name="order_date",
    column=ORDER_DATE,
    # The first order date of the sample data `make run` lands (its 150 days and the 30 days of
    # orders before them, to 2026-11-26); a deployment moves it with LAKEHOUSE_PARTITIONS_START.
    start=date(2026, 5, 30),
    job=SALES_FACTS_JOB,
    schedule_hour=6,
    days_from=(SALES_ORDERS, "order_ts"),
)


def dms_files(source: str) -> FileSource:
    """Full-load files (``LOAD00000001.csv``) have no ``Op``; CDC files start with ``Op, dms_commit_ts``.
    Both end with ``AR_H_CHANGE_SEQ``, a zero-padded string (no type: it sorts as text), empty in
    full-load rows. It is not required: in a file without it, the changes of one commit time are
    ordered by position."""
    columns = ("Op", SEQUENCE, *TABLE_COLUMNS[source], CHANGE_SEQUENCE)
    return FileSource(
        folder=f"{DMS_FOLDER}/{source}",
        columns=columns,
        column_types={c: COLUMN_TYPES[c] for c in columns if c in COLUMN_TYPES},
        required_columns=(SEQUENCE, *TABLE_KEYS[source]),
    )


def cdc_config(
    source: str, scd_type: int = 1, track_history_columns: tuple[str, ...] | None = None
) -> CdcConfig:
    return CdcConfig(
        keys=TABLE_KEYS[source],
        sequence_by=SEQUENCE_BY,
        columns=("Op", *TABLE_COLUMNS[source], *SEQUENCE_BY),
        apply_as_deletes="Op = 'D'",
        except_columns=("Op",),
        scd_type=scd_type,
        track_history_columns=track_history_columns,
    )


# Dates touched by a batch of changes, so that the partitions of those dates are rebuilt -------


def _dates(frame: DataFrame) -> list[date]:
    return sorted(row[0] for row in frame.where(F.col("order_date").isNotNull()).distinct().collect())


def order_dates(tables: DeltaTables, changes: DataFrame) -> list[date]:
    """The dates of every change in bronze of the changed rows' orders: the day an order was
    placed on before a correction of its ``order_ts`` too (an update carries the new value
    only, and the old day's facts still hold the order), a deleted order's day, and an item's
    order's (items carry no date). From bronze, not the target's state before the merge, so
    that a rerun after a run killed between the merge and its report finds the same days.
    Before any order has landed, none: the orders' own run touches their days."""
    if not tables.exists(bronze_table("orders")):
        return []
    orders = tables.read(bronze_table("orders")).where(passing(structural_expectations(cdc_config("orders"))))
    return _dates(matching(orders, changes, ["order_id"]).select(F.to_date("order_ts").alias("order_date")))


def category_dates(tables: DeltaTables, changes: DataFrame) -> list[date]:
    """The order dates of the current lines of every product whose category the changes moved:
    daily sales group a day's lines by their product's current category. Among the product's
    changes in bronze that were applied (those every drop expectation passes), one moves it when
    it is the product's first, a delete, the first after a delete, or holds another category than
    the one before it (in sequence, then position); a change of price alone does not."""
    if not tables.exists(ORDER_ITEM_FACTS):
        return []
    config = cdc_config("products")
    applied = passing(cdc_expectations(config, PRODUCT_RULES))
    history = matching(tables.read(bronze_table("products")).where(applied), changes, ["product_id"])
    in_order = Window.partitionBy("product_id").orderBy(
        *(F.col(c).asc_nulls_first() for c in config.sequence_by), *(F.col(c) for c in POSITION)
    )
    deleted = F.coalesce(F.col("Op") == "D", F.lit(False))
    flagged = history.select(
        "product_id",
        *POSITION,
        (
            (F.row_number().over(in_order) == 1)
            | deleted
            | F.coalesce(F.lag(deleted).over(in_order), F.lit(False))
            | ~F.col("category").eqNullSafe(F.lag("category").over(in_order))
        ).alias("_moves"),
    )
    moved = matching(flagged, changes, list(POSITION)).where("_moves").select("product_id").distinct()
    lines = matching(tables.read(ORDER_ITEM_FACTS), moved, ["product_id"])
    return _dates(lines.select(ORDER_DATE))


# Expectations ---------------------------------------------------------------------------------
# On changes, domain rules warn (silver mirrors the source), except where a change would make
# the state wrong (a negative quantity, an unknown status, an order without a time, which no
# order date would hold): those changes are not applied. Deletes are never judged by them.

#: DMS writes an operation in every row of a CDC file; only full-load files (``LOAD00000001.csv``)
#: have none. A CDC row without one is no change: taken for an upsert, it could undo a delete.
OPERATION_PRESENT = Expectation(
    "operation_present",
    "Op IS NOT NULL OR substring_index(_source_file, '/', -1) LIKE 'LOAD%'",
    Action.DROP,
    "a row of a CDC file has an operation (only full-load files, LOAD*.csv, have none)",
)
KNOWN_CURRENCY = rules.one_of("known_currency", "currency", USD_PER_UNIT, Action.WARN, "a known currency")
KNOWN_STATUS = rules.one_of("known_status", "status", ORDER_STATUSES, Action.DROP, "a known order status")
CUSTOMER_RULES = (rules.valid_email(), rules.known_country())
PRODUCT_RULES = (
    rules.not_negative("price_not_negative", "price", Action.DROP, "a price of 0 or more"),
    KNOWN_CURRENCY,
)
ORDER_RULES = (
    KNOWN_STATUS,
    KNOWN_CURRENCY,
    Expectation(
        "order_time_present",
        "order_ts IS NOT NULL",
        Action.DROP,
        "the order has a time (an order date: without one, no day's facts could hold it)",
    ),
    Expectation(
        "plausible_order_time",
        "order_ts BETWEEN TIMESTAMP'2000-01-01 00:00:00' AND dms_commit_ts",
        Action.WARN,
        "placed after 2000 and no later than the change",
    ),
)
ORDER_ITEM_RULES = (
    Expectation("quantity_positive", "quantity > 0", Action.DROP, "at least one piece"),
    rules.not_negative("price_not_negative", "unit_price", Action.DROP, "a unit price of 0 or more"),
)
_COLUMN_DOCS = {
    "Op": "DMS operation: I(nsert), U(pdate, after-image), D(elete, before-image); null in full loads.",
    SEQUENCE: "Commit time of the change in the source database (DMS TimestampColumnName).",
    CHANGE_SEQUENCE: "DMS's change sequence (header AR_H_CHANGE_SEQ): strictly increasing in commit "
    "order, within a transaction too; null in full-load rows.",
}


def _bronze(source: str) -> Table:
    return Table(
        name=bronze_table(source),
        description=f"DMS full-load and CDC rows of sales.{source}, as landed: Op, dms_commit_ts, the "
        "table's columns, AR_H_CHANGE_SEQ, ingestion metadata and _rescued_data.",
        source=dms_files(source),
        expectations=(
            Expectation(
                "key_present",
                " AND ".join(f"{key} IS NOT NULL" for key in TABLE_KEYS[source]),
                Action.WARN,
                "the row has its key (malformed lines have none)",
            ),
        ),
        column_docs=money_docs(bronze_table(source), {**COLUMN_DOCS[source], **_COLUMN_DOCS}),
    )


def _cdc(
    source: str,
    name: TableName,
    description: str,
    domain_rules: tuple[Expectation, ...],
    touches: Callable[[DeltaTables, DataFrame], list[date]] | None = None,
    checks: tuple[TableCheck, ...] = (),
    partition: StatePartition | None = None,
    **config,
) -> Table:
    spec = cdc_config(source, **config)
    docs = {
        **COLUMN_DOCS[source],
        SEQUENCE: "Commit time of the change that produced the row.",
        CHANGE_SEQUENCE: "DMS's change sequence of that change (null for a full-load row).",
        "_source_file": "The landed file of that change.",
        "_source_row": "Its line in the file.",
    }
    if partition == CURRENT_VERSIONS:
        docs[partition.column] = "SCD2: true for the current version (__END_AT null); the table's partition."
    elif partition is not None:
        docs[partition.column] = f"The partition: {partition.expression}."
    if spec.scd_type == 2:
        docs |= {
            START_AT: f"SCD2: when the version started: the sequence of its first change, a struct "
            f"({SEQUENCE}, {CHANGE_SEQUENCE}); two tracked changes in one transaction share the "
            f"{SEQUENCE} and differ in {CHANGE_SEQUENCE}.",
            END_AT: "SCD2: when it ended (the same struct: the sequence of the change that ended it); "
            "null while current.",
        }
    return Table(
        name=name,
        description=description,
        cdc=AutoCdc(
            source=bronze_table(source),
            config=spec,
            touches=TouchedPartitions(ORDER_DATES, touches) if touches else None,
            partition=partition,
        ),
        expectations=cdc_expectations(spec, (OPERATION_PRESENT, *domain_rules)),
        primary_key=spec.keys if spec.scd_type == 1 else (*spec.keys, START_AT),
        checks=checks,
        column_docs=money_docs(name, docs),
    )


# Facts by order date (daily partitions) and gold marts ----------------------------------------


def build_facts(
    facts: Callable[[DataFrame, DataFrame, date, date], DataFrame], context: UnitContext
) -> UnitResult:
    """Facts of the window's order dates, from the current orders and their lines (pinned: the
    rows written are the rows the expectations judged, whatever the CDC commits meanwhile)."""
    window = context.request.require_partition()
    orders = context.tables.read(SALES_ORDERS, pinned=True)
    if ORDER_MONTH in orders.columns:  # partitioned by it: only the window's months are read
        last_day = window.end - timedelta(days=1)
        orders = orders.where(
            F.col(ORDER_MONTH).between(window.start.replace(day=1), last_day.replace(day=1))
        )
    items = context.tables.read(SALES_ORDER_ITEMS, pinned=True)
    return replace_partitions(context, facts(orders, items, window.start, window.end))


def build_order_facts(context: UnitContext) -> UnitResult:
    return build_facts(sales.order_facts, context)


def build_order_item_facts(context: UnitContext) -> UnitResult:
    return build_facts(sales.order_item_facts, context)


def build_daily_sales(context: UnitContext) -> UnitResult:
    window = context.partition_window()
    assert window is not None
    items = context.tables.read(ORDER_ITEM_FACTS, pinned=True).where(window.condition())
    products = context.tables.read(SALES_PRODUCTS, pinned=True)
    return replace_partitions(context, sales.daily_sales(items, products))


def build_customer_360(context: UnitContext) -> UnitResult:
    tables, as_of_date = context.tables, context.request.as_of_date
    frame = sales.customer_360(
        tables.read(SALES_CUSTOMERS), tables.read(SALES_ORDERS), tables.read(SALES_ORDER_ITEMS), as_of_date
    )
    return overwrite_table(context, frame, {"lakehouse/as_of_date": as_of_date.isoformat()})


def build_product_performance(context: UnitContext) -> UnitResult:
    tables = context.tables
    frame = sales.product_performance(
        tables.read(SALES_PRODUCTS), tables.read(SALES_ORDERS), tables.read(SALES_ORDER_ITEMS)
    )
    return overwrite_table(context, frame)


_ORDER_DATE_DOC = "Date the order was placed (UTC): the partition."
_CANCELLED_DOC = "The order is cancelled (its lines count as orders, not as revenue)."
ORDER_FACT_DOCS = {
    **COLUMN_DOCS["orders"],
    "order_date": _ORDER_DATE_DOC,
    "status": "The order's current status.",
    "is_cancelled": _CANCELLED_DOC,
    "line_count": "Lines of the order.",
    "units": "Units of all its lines.",
    "order_amount": "Sum of quantity x unit_price of its lines, in the order's currency.",
}
ORDER_ITEM_FACT_DOCS = {
    **COLUMN_DOCS["order_items"],
    "order_date": _ORDER_DATE_DOC,
    "customer_id": COLUMN_DOCS["orders"]["customer_id"],
    "line_amount": "quantity x unit_price, in the order's currency.",
    "currency": COLUMN_DOCS["orders"]["currency"],
    "status": "The order's current status.",
    "is_cancelled": _CANCELLED_DOC,
}

_ORDERS_STATUS = ((SALES_ORDERS, "status"),)
_LINE_AMOUNT = ((SALES_ORDER_ITEMS, "quantity"), (SALES_ORDER_ITEMS, "unit_price"))

DOMAIN = Domain(
    name="sales",
    description="The operational sales database as AWS DMS replicates it: current state and history "
    "applied from change data, facts by order date, and sales marts.",
    owners=("team:sales-data",),
    tables=(
        *(_bronze(source) for source in TABLE_COLUMNS),
        _cdc(
            "customers",
            SALES_CUSTOMERS,
            "Current state of every sales customer (SCD type 1).",
            CUSTOMER_RULES,
        ),
        _cdc(
            "customers",
            SALES_CUSTOMERS_HISTORY,
            "Every version of every sales customer (SCD type 2, __START_AT / __END_AT); a change of "
            f"{', '.join(CUSTOMER_HISTORY_COLUMNS)} starts a version. Partitioned by is_current.",
            CUSTOMER_RULES,
            partition=CURRENT_VERSIONS,
            scd_type=2,
            track_history_columns=CUSTOMER_HISTORY_COLUMNS,
        ),
        _cdc(
            "products",
            SALES_PRODUCTS,
            "Current state of every product (SCD type 1).",
            PRODUCT_RULES,
            touches=category_dates,
        ),
        _cdc(
            "orders",
            SALES_ORDERS,
            "Current state of every order (SCD type 1), partitioned by the month of its order time.",
            ORDER_RULES,
            touches=order_dates,
            partition=StatePartition(ORDER_MONTH, "trunc(order_ts, 'MM')"),
            checks=(references("customer_exists", ("customer_id",), SALES_CUSTOMERS),),
        ),
        _cdc(
            "order_items",
            SALES_ORDER_ITEMS,
            "Current state of every order line (SCD type 1).",
            ORDER_ITEM_RULES,
            touches=order_dates,
            checks=(references("order_exists", ("order_id",), SALES_ORDERS),),
        ),
        Table(
            name=ORDER_FACTS,
            description="One row per order, by order date: status, currency, lines, units and amount.",
            build=build_order_facts,
            inputs=(SALES_ORDERS, SALES_ORDER_ITEMS),
            partitions=ORDER_DATES,
            expectations=(
                rules.not_negative(
                    "amount_not_negative", "order_amount", Action.DROP, "an order amount of 0 or more"
                ),
                Expectation("has_lines", "line_count > 0", Action.WARN, "at least one order line"),
                KNOWN_CURRENCY,
            ),
            primary_key=("order_id",),
            checks=(row_count_anomaly(),),
            column_docs=money_docs(ORDER_FACTS, ORDER_FACT_DOCS),
        ),
        Table(
            name=ORDER_ITEM_FACTS,
            description="One row per order line, by order date, with the order's status and currency.",
            build=build_order_item_facts,
            inputs=(SALES_ORDERS, SALES_ORDER_ITEMS),
            partitions=ORDER_DATES,
            expectations=(
                rules.not_negative(
                    "line_amount_not_negative", "line_amount", Action.DROP, "a line amount of 0 or more"
                ),
                rules.one_of("known_status", "status", ORDER_STATUSES, Action.WARN, "a known order status"),
            ),
            primary_key=("order_id", "line_number"),
            checks=(row_count_anomaly(), references("product_exists", ("product_id",), SALES_PRODUCTS)),
            column_docs=money_docs(ORDER_ITEM_FACTS, ORDER_ITEM_FACT_DOCS),
        ),
        Table(
            name=DAILY_SALES,
            serving=Serving(),
            description="Per order date, product category and currency: orders, units, revenue, average "
            "order value and cancelled share. Cancelled orders count as orders, not as revenue.",
            build=build_daily_sales,
            inputs=(ORDER_ITEM_FACTS, SALES_PRODUCTS),
            partitions=ORDER_DATES,
            expectations=(
                rules.not_negative("revenue_not_negative", "revenue", Action.FAIL, "revenue of 0 or more"),
                Expectation(
                    "cancelled_share_is_a_share",
                    "cancelled_share BETWEEN 0 AND 1",
                    Action.FAIL,
                    "a share in [0, 1]",
                ),
                Expectation(
                    "known_category", "category <> 'unknown'", Action.WARN, "every product has a category"
                ),
                Expectation(
                    "order_currency_present",
                    "currency <> 'unknown'",
                    Action.WARN,
                    "every order has a currency",
                ),
            ),
            primary_key=("order_date", "category", "currency"),
            checks=(row_count_anomaly(),),
            column_docs=money_docs(
                DAILY_SALES,
                {
                    "order_date": "Date the orders were placed (UTC); the partition.",
                    "category": "Product category; 'unknown' for products without one.",
                    "currency": "Currency of the orders (amounts are not converted); 'unknown' for orders "
                    "without one.",
                    "orders": "Orders with a line in the category, cancelled ones included.",
                    "units": "Units of orders not cancelled.",
                    "revenue": "Sum of line amounts of orders not cancelled, in the currency.",
                    "average_order_value": "revenue / orders not cancelled; null without such orders.",
                    "cancelled_share": "Cancelled orders / orders (a double: one division of two counts).",
                },
            ),
            column_lineage={
                "order_date": ((ORDER_ITEM_FACTS, "order_date"),),
                "category": ((SALES_PRODUCTS, "category"),),
                "currency": ((ORDER_ITEM_FACTS, "currency"),),
                "orders": ((ORDER_ITEM_FACTS, "order_id"),),
                "units": ((ORDER_ITEM_FACTS, "quantity"), (ORDER_ITEM_FACTS, "is_cancelled")),
                "revenue": ((ORDER_ITEM_FACTS, "line_amount"), (ORDER_ITEM_FACTS, "is_cancelled")),
                "average_order_value": ((ORDER_ITEM_FACTS, "line_amount"), (ORDER_ITEM_FACTS, "order_id")),
                "cancelled_share": ((ORDER_ITEM_FACTS, "order_id"), (ORDER_ITEM_FACTS, "is_cancelled")),
            },
        ),
        Table(
            name=CUSTOMER_360,
            serving=Serving(),
            description="One row per sales customer: orders, USD revenue, first and last order, days since "
            "the last order and segment (active <= 30 days, recent <= 90, else inactive).",
            build=build_customer_360,
            inputs=(SALES_CUSTOMERS, SALES_ORDERS, SALES_ORDER_ITEMS),
            uses_as_of_date=True,
            expectations=(
                rules.not_negative(
                    "revenue_not_negative", "lifetime_revenue_usd", Action.FAIL, "revenue of 0 or more"
                ),
                rules.one_of(
                    "known_segment",
                    "customer_segment",
                    ("active", "recent", "inactive"),
                    Action.FAIL,
                    "a known segment",
                ),
                Expectation(
                    "has_ordered",
                    "order_count + cancelled_order_count > 0",
                    Action.WARN,
                    "the customer has ordered",
                ),
            ),
            primary_key=("customer_id",),
            column_docs=money_docs(
                CUSTOMER_360,
                {
                    "customer_id": "Sales database customer id.",
                    "first_name": "First name.",
                    "last_name": "Last name.",
                    "email": "PII: masked for readers outside the PII group in production.",
                    "country": "ISO 3166 alpha-2 country code.",
                    "first_order_date": "Date of the customer's first order (UTC); null if none.",
                    "last_order_date": "Date of the customer's last order (UTC); null if none.",
                    "order_count": "Orders not cancelled.",
                    "cancelled_order_count": "Cancelled orders.",
                    "lifetime_revenue_usd": "Revenue of orders not cancelled, in USD at reference rates "
                    "(each order's amount times its currency's rate, added up exactly).",
                    "average_order_value_usd": "The exact USD revenue / order_count (not the rounded "
                    "lifetime_revenue_usd divided; an order in a currency without a reference rate "
                    "adds 0); null without orders.",
                    "days_since_last_activity": "Days from the last order to the run's as-of date.",
                    "customer_segment": "active (<= 30 days), recent (<= 90) or inactive.",
                },
            ),
            column_lineage={
                "customer_id": ((SALES_CUSTOMERS, "customer_id"),),
                "first_name": ((SALES_CUSTOMERS, "first_name"),),
                "last_name": ((SALES_CUSTOMERS, "last_name"),),
                "email": ((SALES_CUSTOMERS, "email"),),
                "country": ((SALES_CUSTOMERS, "country"),),
                "first_order_date": ((SALES_ORDERS, "order_ts"),),
                "last_order_date": ((SALES_ORDERS, "order_ts"),),
                "order_count": ((SALES_ORDERS, "order_id"), *_ORDERS_STATUS),
                "cancelled_order_count": ((SALES_ORDERS, "order_id"), *_ORDERS_STATUS),
                "lifetime_revenue_usd": (*_LINE_AMOUNT, (SALES_ORDERS, "currency"), *_ORDERS_STATUS),
                "average_order_value_usd": (*_LINE_AMOUNT, (SALES_ORDERS, "currency"), *_ORDERS_STATUS),
                "days_since_last_activity": ((SALES_ORDERS, "order_ts"),),
                "customer_segment": ((SALES_ORDERS, "order_ts"),),
            },
        ),
        Table(
            name=PRODUCT_PERFORMANCE,
            serving=Serving(),
            description="Per product: orders, units, USD revenue, cancel rate (share of units in cancelled "
            "orders) and rank by revenue within its category.",
            build=build_product_performance,
            inputs=(SALES_PRODUCTS, SALES_ORDERS, SALES_ORDER_ITEMS),
            expectations=(
                Expectation(
                    "cancel_rate_is_a_share",
                    "cancel_rate IS NULL OR cancel_rate BETWEEN 0 AND 1",
                    Action.FAIL,
                    "a share in [0, 1]",
                ),
                Expectation("has_sold", "units_sold > 0", Action.WARN, "the product has sold"),
            ),
            primary_key=("product_id",),
            column_docs=money_docs(
                PRODUCT_PERFORMANCE,
                {
                    "product_id": "Sales database product id.",
                    "sku": "Stock keeping unit.",
                    "name": "Product name.",
                    "category": "Product category.",
                    "orders": "Orders with a line of the product, cancelled ones included.",
                    "units_sold": "Units in orders not cancelled.",
                    "units_cancelled": "Units in cancelled orders.",
                    "revenue_usd": "Revenue of orders not cancelled, in USD at reference rates (each line's "
                    "amount times its currency's rate, added up exactly).",
                    "cancel_rate": "units_cancelled / (units_sold + units_cancelled) (a double: one "
                    "division of two counts); null before any sale.",
                    "rank_in_category": "1 = the category's best seller by revenue_usd; ties by product_id.",
                },
            ),
            column_lineage={
                "product_id": ((SALES_PRODUCTS, "product_id"),),
                "sku": ((SALES_PRODUCTS, "sku"),),
                "name": ((SALES_PRODUCTS, "name"),),
                "category": ((SALES_PRODUCTS, "category"),),
                "orders": ((SALES_ORDER_ITEMS, "order_id"), (SALES_ORDERS, "order_id")),
                "units_sold": ((SALES_ORDER_ITEMS, "quantity"), *_ORDERS_STATUS),
                "units_cancelled": ((SALES_ORDER_ITEMS, "quantity"), *_ORDERS_STATUS),
                "revenue_usd": (*_LINE_AMOUNT, (SALES_ORDERS, "currency"), *_ORDERS_STATUS),
                "cancel_rate": ((SALES_ORDER_ITEMS, "quantity"), *_ORDERS_STATUS),
                "rank_in_category": (*_LINE_AMOUNT, (SALES_PRODUCTS, "category")),
            },
        ),
    ),
)
