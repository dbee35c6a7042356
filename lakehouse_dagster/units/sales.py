"""The sales domain: AWS DMS files -> bronze -> silver (AUTO CDC) -> facts by order date -> gold marts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.autoloader import FileSource
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import Action, Expectation, passing
from lakehouse_dagster.sources.sales import (
    CUSTOMER_HISTORY_COLUMNS,
    DMS_FOLDER,
    ORDER_STATUSES,
    SEQUENCE,
    TABLE_COLUMNS,
    TABLE_KEYS,
)
from lakehouse_dagster.transforms import sales
from lakehouse_dagster.transforms.cdc import CdcConfig
from lakehouse_dagster.transforms.customers import EMAIL_PATTERN
from lakehouse_dagster.units.base import TableUnit, UnitContext, UnitResult
from lakehouse_dagster.units.cdc import CdcTable, TouchedDates, auto_cdc_unit
from lakehouse_dagster.units.ingestion import file_ingestion_unit
from lakehouse_dagster.units.table_checks import references, row_count_anomaly

GROUP = "sales"
#: The partition column of the facts and of daily sales.
ORDER_DATE = "order_date"

#: The source tables as DMS writes them (without ``Op`` and ``dms_commit_ts``), and their keys.
SOURCE_COLUMNS = TABLE_COLUMNS
SOURCE_KEYS = TABLE_KEYS
COLUMN_TYPES = {
    SEQUENCE: "TIMESTAMP",
    "customer_id": "BIGINT",
    "product_id": "BIGINT",
    "order_id": "BIGINT",
    "line_number": "INT",
    "quantity": "INT",
    "price": "DECIMAL(12,2)",
    "unit_price": "DECIMAL(12,2)",
    "order_ts": "TIMESTAMP",
    "created_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
}


def bronze_table(source: str) -> TableName:
    return TableName("bronze", f"sales_{source}")


def dms_source(source: str) -> FileSource:
    """Full-load files (``LOAD00000001.csv``) have no ``Op``; CDC files start with ``Op, dms_commit_ts``."""
    columns = ("Op", SEQUENCE, *SOURCE_COLUMNS[source])
    return FileSource(
        folder=f"{DMS_FOLDER}/{source}",
        columns=columns,
        column_types={c: COLUMN_TYPES[c] for c in columns if c in COLUMN_TYPES},
        required_columns=(SEQUENCE, *SOURCE_KEYS[source]),
    )


def cdc_config(
    source: str, scd_type: int = 1, track_history_columns: tuple[str, ...] | None = None
) -> CdcConfig:
    return CdcConfig(
        keys=SOURCE_KEYS[source],
        sequence_by=SEQUENCE,
        columns=("Op", *SOURCE_COLUMNS[source], SEQUENCE),
        apply_as_deletes="Op = 'D'",
        except_columns=("Op",),
        scd_type=scd_type,
        track_history_columns=track_history_columns,
    )


SILVER_CUSTOMERS = TableName("silver", "sales_customers")
SILVER_CUSTOMERS_HISTORY = TableName("silver", "sales_customers_history")
SILVER_PRODUCTS = TableName("silver", "products")
SILVER_ORDERS = TableName("silver", "orders")
SILVER_ORDER_ITEMS = TableName("silver", "order_items")
ORDER_FACTS = TableName("silver", "order_facts")
ORDER_ITEM_FACTS = TableName("silver", "order_item_facts")
DAILY_SALES = TableName("gold", "daily_sales")
CUSTOMER_360 = TableName("gold", "customer_360")
PRODUCT_PERFORMANCE = TableName("gold", "product_performance")


# Dates touched by a batch of changes, so that the partitions of those dates can be refreshed ----


def _dates(frame: DataFrame) -> list[date]:
    return sorted(row[0] for row in frame.where(F.col("order_date").isNotNull()).distinct().collect())


def order_dates_of_orders(_tables: DeltaTables, changes: DataFrame) -> list[date]:
    return _dates(changes.select(F.to_date("order_ts").alias("order_date")))


def order_dates_of_items(tables: DeltaTables, changes: DataFrame) -> list[date]:
    """Items carry no date: take it from any change of their order (a deleted order's included)."""
    orders = tables.read(bronze_table("orders")).where(passing(_ORDERS_CDC.structural_expectations()))
    touched = changes.select("order_id").distinct()
    return _dates(
        orders.join(touched, "order_id", "left_semi").select(F.to_date("order_ts").alias("order_date"))
    )


def _cdc(
    source: str, target: TableName, description: str, touched_dates: TouchedDates | None = None, **config
) -> CdcTable:
    return CdcTable(
        source=bronze_table(source),
        target=target,
        config=cdc_config(source, **config),
        description=description,
        group=GROUP,
        touched_dates=touched_dates,
    )


_ORDERS_CDC = _cdc(
    "orders", SILVER_ORDERS, "Current state of every order (SCD type 1).", touched_dates=order_dates_of_orders
)

# Expectations --------------------------------------------------------------------------------
# On changes, domain rules warn (silver mirrors the source), except where a change would make
# the state wrong (a negative quantity, an unknown status): those changes are not applied.

CURRENCIES = ", ".join(f"'{code}'" for code in sales.USD_PER_UNIT)
STATUSES = ", ".join(f"'{status}'" for status in ORDER_STATUSES)


def _expect(name: str, condition: str, action: Action, description: str) -> Expectation:
    return Expectation(name, condition, action, description)


def _key_present(source: str) -> Expectation:
    keys = " AND ".join(f"{key} IS NOT NULL" for key in SOURCE_KEYS[source])
    return _expect("key_present", keys, Action.WARN, "the row has its key (malformed lines have none)")


CUSTOMER_RULES = (
    _expect(
        "valid_email",
        f"email RLIKE '{EMAIL_PATTERN}'",
        Action.WARN,
        "a well-formed email",
    ),
    _expect(
        "known_country",
        "country RLIKE '^[A-Z]{2}$'",
        Action.WARN,
        "an ISO country code",
    ),
)
PRODUCT_RULES = (
    _expect("price_not_negative", "price >= 0", Action.DROP, "a price of 0 or more"),
    _expect("known_currency", f"currency IN ({CURRENCIES})", Action.WARN, "a known currency"),
)
ORDER_RULES = (
    _expect("known_status", f"status IN ({STATUSES})", Action.DROP, "a known order status"),
    _expect("known_currency", f"currency IN ({CURRENCIES})", Action.WARN, "a known currency"),
    _expect(
        "plausible_order_time",
        "order_ts BETWEEN TIMESTAMP'2000-01-01 00:00:00' AND dms_commit_ts",
        Action.WARN,
        "placed after 2000 and no later than the change",
    ),
)
ORDER_ITEM_RULES = (
    _expect("quantity_positive", "quantity > 0", Action.DROP, "at least one piece"),
    _expect("price_not_negative", "unit_price >= 0", Action.DROP, "a unit price of 0 or more"),
)

BRONZE_UNITS = tuple(
    file_ingestion_unit(
        bronze_table(source),
        dms_source(source),
        description=f"DMS full-load and CDC rows of sales.{source}, as landed: Op, dms_commit_ts, the "
        "table's columns, ingestion metadata and _rescued_data.",
        group=GROUP,
        expectations=(_key_present(source),),
    )
    for source in SOURCE_COLUMNS
)

SILVER_CDC_UNITS = (
    auto_cdc_unit(
        _cdc("customers", SILVER_CUSTOMERS, "Current state of every sales customer (SCD type 1)."),
        expectations=CUSTOMER_RULES,
    ),
    auto_cdc_unit(
        _cdc(
            "customers",
            SILVER_CUSTOMERS_HISTORY,
            "Every version of every sales customer (SCD type 2, __START_AT / __END_AT); a change of "
            f"{', '.join(CUSTOMER_HISTORY_COLUMNS)} starts a version.",
            scd_type=2,
            track_history_columns=CUSTOMER_HISTORY_COLUMNS,
        ),
        expectations=CUSTOMER_RULES,
    ),
    auto_cdc_unit(
        _cdc("products", SILVER_PRODUCTS, "Current state of every product (SCD type 1)."),
        expectations=PRODUCT_RULES,
    ),
    auto_cdc_unit(
        _ORDERS_CDC,
        expectations=ORDER_RULES,
        table_checks=(references("customer_exists", ("customer_id",), SILVER_CUSTOMERS),),
    ),
    auto_cdc_unit(
        _cdc(
            "order_items",
            SILVER_ORDER_ITEMS,
            "Current state of every order line (SCD type 1).",
            touched_dates=order_dates_of_items,
        ),
        expectations=ORDER_ITEM_RULES,
        table_checks=(
            references("order_exists", ("order_id",), SILVER_ORDERS),
            references("product_exists", ("product_id",), SILVER_PRODUCTS),
        ),
    ),
)


# Facts by order date (daily partitions) -------------------------------------------------------


def _replace_partitions(context: UnitContext, frame: DataFrame) -> UnitResult:
    """Expectations over the window's rows, then one ``replaceWhere`` write of the whole window."""
    window = context.request.require_partition()
    predicate = context.partition_predicate()
    evaluation = context.evaluate(frame)
    context.tables.replace_where(context.name, evaluation.kept, predicate, partition_by=(ORDER_DATE,))
    quality, outcomes = context.record_quality(evaluation, predicate=predicate)
    metadata = {
        "lakehouse/partition_start": window.start.isoformat(),
        "lakehouse/partition_end": window.end.isoformat(),
        "lakehouse/partition_rows": context.tables.read(context.name).where(predicate).count(),
        **quality,
    }
    return context.result(metadata, outcomes)


def build_facts(
    facts: Callable[[DataFrame, DataFrame, date, date], DataFrame], context: UnitContext
) -> UnitResult:
    """Facts of the window's order dates, from the current orders and their lines."""
    window = context.request.require_partition()
    orders, items = context.tables.read(SILVER_ORDERS), context.tables.read(SILVER_ORDER_ITEMS)
    return _replace_partitions(context, facts(orders, items, window.start, window.end))


def build_daily_sales(context: UnitContext) -> UnitResult:
    window = context.request.require_partition()
    tables = context.tables
    items = tables.read(ORDER_ITEM_FACTS).where(window.predicate(ORDER_DATE))
    return _replace_partitions(context, sales.daily_sales(items, tables.read(SILVER_PRODUCTS)))


# Gold marts ------------------------------------------------------------------------------------


def _overwrite(context: UnitContext, frame: DataFrame, metadata: dict) -> UnitResult:
    evaluation = context.evaluate(frame)
    context.tables.overwrite(context.name, evaluation.kept)
    quality, outcomes = context.record_quality(evaluation)
    return context.result({**metadata, **quality}, outcomes)


def build_customer_360(context: UnitContext) -> UnitResult:
    tables = context.tables
    as_of_date = context.request.resolved_as_of_date()
    frame = sales.customer_360(
        tables.read(SILVER_CUSTOMERS), tables.read(SILVER_ORDERS), tables.read(SILVER_ORDER_ITEMS), as_of_date
    )
    return _overwrite(context, frame, {"lakehouse/as_of_date": as_of_date.isoformat()})


def build_product_performance(context: UnitContext) -> UnitResult:
    tables = context.tables
    frame = sales.product_performance(
        tables.read(SILVER_PRODUCTS), tables.read(SILVER_ORDERS), tables.read(SILVER_ORDER_ITEMS)
    )
    return _overwrite(context, frame, {})


def _lineage(**columns: tuple[tuple[TableName, str], ...]) -> dict[str, tuple[tuple[TableName, str], ...]]:
    return columns


_ORDERS_STATUS = ((SILVER_ORDERS, "status"),)
_LINE_AMOUNT = ((SILVER_ORDER_ITEMS, "quantity"), (SILVER_ORDER_ITEMS, "unit_price"))

FACT_UNITS = (
    TableUnit(
        name=ORDER_FACTS,
        description="One row per order, by order date: status, currency, lines, units and amount.",
        group=GROUP,
        run=partial(build_facts, sales.order_facts),
        inputs=(SILVER_ORDERS, SILVER_ORDER_ITEMS),
        partition_column=ORDER_DATE,
        expectations=(
            _expect("amount_not_negative", "order_amount >= 0", Action.DROP, "an order amount of 0 or more"),
            _expect("has_lines", "line_count > 0", Action.WARN, "at least one order line"),
            _expect("known_currency", f"currency IN ({CURRENCIES})", Action.WARN, "a known currency"),
        ),
        primary_key=("order_id",),
        table_checks=(row_count_anomaly(),),
    ),
    TableUnit(
        name=ORDER_ITEM_FACTS,
        description="One row per order line, by order date, with the order's status and currency.",
        group=GROUP,
        run=partial(build_facts, sales.order_item_facts),
        inputs=(SILVER_ORDERS, SILVER_ORDER_ITEMS),
        partition_column=ORDER_DATE,
        expectations=(
            _expect(
                "line_amount_not_negative", "line_amount >= 0", Action.DROP, "a line amount of 0 or more"
            ),
            _expect("known_status", f"status IN ({STATUSES})", Action.WARN, "a known order status"),
        ),
        primary_key=("order_id", "line_number"),
        table_checks=(row_count_anomaly(), references("product_exists", ("product_id",), SILVER_PRODUCTS)),
    ),
)

GOLD_UNITS = (
    TableUnit(
        name=DAILY_SALES,
        description="Per order date, product category and currency: orders, units, revenue, average "
        "order value and cancelled share. Cancelled orders count as orders, not as revenue.",
        group=GROUP,
        run=build_daily_sales,
        inputs=(ORDER_ITEM_FACTS, SILVER_PRODUCTS),
        partition_column=ORDER_DATE,
        expectations=(
            _expect("revenue_not_negative", "revenue >= 0", Action.FAIL, "revenue of 0 or more"),
            _expect(
                "cancelled_share_is_a_share",
                "cancelled_share BETWEEN 0 AND 1",
                Action.FAIL,
                "a share in [0, 1]",
            ),
            _expect("known_category", "category <> 'unknown'", Action.WARN, "every product has a category"),
        ),
        primary_key=("order_date", "category", "currency"),
        table_checks=(row_count_anomaly(),),
        column_lineage=_lineage(
            order_date=((ORDER_ITEM_FACTS, "order_date"),),
            category=((SILVER_PRODUCTS, "category"),),
            currency=((ORDER_ITEM_FACTS, "currency"),),
            orders=((ORDER_ITEM_FACTS, "order_id"),),
            units=((ORDER_ITEM_FACTS, "quantity"), (ORDER_ITEM_FACTS, "is_cancelled")),
            revenue=((ORDER_ITEM_FACTS, "line_amount"), (ORDER_ITEM_FACTS, "is_cancelled")),
            average_order_value=((ORDER_ITEM_FACTS, "line_amount"), (ORDER_ITEM_FACTS, "order_id")),
            cancelled_share=((ORDER_ITEM_FACTS, "order_id"), (ORDER_ITEM_FACTS, "is_cancelled")),
        ),
    ),
    TableUnit(
        name=CUSTOMER_360,
        description="One row per sales customer: orders, USD revenue, first and last order, days since "
        "the last order and segment (active <= 30 days, recent <= 90, else inactive).",
        group=GROUP,
        run=build_customer_360,
        inputs=(SILVER_CUSTOMERS, SILVER_ORDERS, SILVER_ORDER_ITEMS),
        uses_as_of_date=True,
        expectations=(
            _expect("revenue_not_negative", "lifetime_revenue_usd >= 0", Action.FAIL, "revenue of 0 or more"),
            _expect(
                "known_segment",
                "customer_segment IN ('active', 'recent', 'inactive')",
                Action.FAIL,
                "a known segment",
            ),
            _expect(
                "has_ordered",
                "order_count + cancelled_order_count > 0",
                Action.WARN,
                "the customer has ordered",
            ),
        ),
        primary_key=("customer_id",),
        column_lineage=_lineage(
            customer_id=((SILVER_CUSTOMERS, "customer_id"),),
            first_name=((SILVER_CUSTOMERS, "first_name"),),
            last_name=((SILVER_CUSTOMERS, "last_name"),),
            email=((SILVER_CUSTOMERS, "email"),),
            country=((SILVER_CUSTOMERS, "country"),),
            first_order_date=((SILVER_ORDERS, "order_ts"),),
            last_order_date=((SILVER_ORDERS, "order_ts"),),
            order_count=((SILVER_ORDERS, "order_id"), *_ORDERS_STATUS),
            cancelled_order_count=((SILVER_ORDERS, "order_id"), *_ORDERS_STATUS),
            lifetime_revenue_usd=(*_LINE_AMOUNT, (SILVER_ORDERS, "currency"), *_ORDERS_STATUS),
            average_order_value_usd=(*_LINE_AMOUNT, (SILVER_ORDERS, "currency"), *_ORDERS_STATUS),
            days_since_last_activity=((SILVER_ORDERS, "order_ts"),),
            customer_segment=((SILVER_ORDERS, "order_ts"),),
        ),
    ),
    TableUnit(
        name=PRODUCT_PERFORMANCE,
        description="Per product: orders, units, USD revenue, cancel rate (share of units in cancelled "
        "orders) and rank by revenue within its category.",
        group=GROUP,
        run=build_product_performance,
        inputs=(SILVER_PRODUCTS, SILVER_ORDERS, SILVER_ORDER_ITEMS),
        expectations=(
            _expect(
                "cancel_rate_is_a_share",
                "cancel_rate IS NULL OR cancel_rate BETWEEN 0 AND 1",
                Action.FAIL,
                "a share in [0, 1]",
            ),
            _expect("has_sold", "units_sold > 0", Action.WARN, "the product has sold"),
        ),
        primary_key=("product_id",),
        column_lineage=_lineage(
            product_id=((SILVER_PRODUCTS, "product_id"),),
            sku=((SILVER_PRODUCTS, "sku"),),
            name=((SILVER_PRODUCTS, "name"),),
            category=((SILVER_PRODUCTS, "category"),),
            orders=((SILVER_ORDER_ITEMS, "order_id"), *_ORDERS_STATUS),
            units_sold=((SILVER_ORDER_ITEMS, "quantity"), *_ORDERS_STATUS),
            units_cancelled=((SILVER_ORDER_ITEMS, "quantity"), *_ORDERS_STATUS),
            revenue_usd=(*_LINE_AMOUNT, (SILVER_ORDERS, "currency"), *_ORDERS_STATUS),
            cancel_rate=((SILVER_ORDER_ITEMS, "quantity"), *_ORDERS_STATUS),
            rank_in_category=(*_LINE_AMOUNT, (SILVER_PRODUCTS, "category")),
        ),
    ),
)

SALES_UNITS = (*BRONZE_UNITS, *SILVER_CDC_UNITS, *FACT_UNITS, *GOLD_UNITS)
