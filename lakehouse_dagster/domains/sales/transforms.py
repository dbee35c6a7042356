"""The sales domain: order facts by order date, daily sales, customer 360, product performance.

Inputs are the silver current-state tables (``silver.orders``, ``silver.order_items``,
``silver.products``, ``silver.sales_customers``). Cancelled orders count as orders but bring
no units or revenue. Amounts stay in the order's currency in the facts and in daily sales;
the customer and product marts convert to USD with fixed reference rates.

Money follows the rules of ``money.py``: exact decimals throughout, rounded once at the end,
half up; shares are one division of two exact counts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_dagster.domains.customers.transforms import segment
from lakehouse_dagster.domains.sales.money import (
    AMOUNT_SCALE,
    AMOUNT_TYPE,
    CENTS,
    RATE_SCALE,
    RATE_TYPE,
    USD_PER_UNIT,
)
from lakehouse_dagster.domains.sales.source import CANCELLED

UNKNOWN_CATEGORY = "unknown"
#: The currency of orders without one in daily sales (a key column: never null).
UNKNOWN_CURRENCY = "unknown"
#: An exact total before its one rounding: 20 integer digits, the places of an amount times a rate.
_EXACT_SCALE = AMOUNT_SCALE + RATE_SCALE
_EXACT_TYPE = f"DECIMAL({20 + _EXACT_SCALE},{_EXACT_SCALE})"
_COUNT_TYPE = "DECIMAL(20,0)"


def _in_window(column: Column, start: date, end: date) -> Column:
    return (column >= F.lit(start)) & (column < F.lit(end))


def to_usd(amount: Column, currency: Column) -> Column:
    """The amount in USD at the reference rate, exact: the product keeps the places of both."""
    rates = F.create_map(
        *(part for code, rate in USD_PER_UNIT.items() for part in (F.lit(code), F.lit(rate).cast(RATE_TYPE)))
    )
    return amount.cast(AMOUNT_TYPE) * rates[currency]


def rounded_to_cents(total: Column) -> Column:
    """An exact total rounded once to cents, half up (Spark's ``round`` of a decimal)."""
    return F.round(total, 2).cast(AMOUNT_TYPE)


def average_to_cents(total: Column, count: Column) -> Column:
    """``total / count`` rounded once to cents, half up (away from zero); null when ``count`` is 0.

    Exact whatever the engine's rules for decimal division (Spark and Sail type a quotient
    differently, and a quotient rounded to 6 places first can land on a half cent):
    cents = (|total| + count * 0.005) div (count * 0.01), integer division of exact decimals.
    """
    exact = total.cast(_EXACT_TYPE)
    counted = F.when(count > 0, count).cast(_COUNT_TYPE)  # null, not a division by zero
    half_cent = counted * F.lit(Decimal("0.005")).cast("DECIMAL(4,3)")
    cents = F.call_function("div", F.abs(exact) + half_cent, counted * F.lit(CENTS).cast("DECIMAL(3,2)"))
    signed = F.when(exact < 0, -cents).otherwise(cents)
    return (signed.cast(_COUNT_TYPE) * F.lit(CENTS)).cast(AMOUNT_TYPE)


def line_amount() -> Column:
    return (F.col("quantity") * F.col("unit_price")).cast(AMOUNT_TYPE)


def order_facts(orders: DataFrame, order_items: DataFrame, start: date, end: date) -> DataFrame:
    """One row per order placed in [start, end): its status and the totals of its lines."""
    lines = order_items.groupBy("order_id").agg(
        F.count(F.lit(1)).alias("line_count"),
        F.sum("quantity").cast("bigint").alias("units"),
        F.sum(line_amount()).cast(AMOUNT_TYPE).alias("order_amount"),
    )
    placed = orders.withColumn("order_date", F.to_date("order_ts")).where(
        _in_window(F.col("order_date"), start, end)
    )
    return placed.join(lines, "order_id", "left").select(
        "order_date",
        "order_id",
        "customer_id",
        "order_ts",
        "status",
        (F.col("status") == CANCELLED).alias("is_cancelled"),
        "currency",
        F.coalesce("line_count", F.lit(0)).cast("bigint").alias("line_count"),
        F.coalesce("units", F.lit(0)).cast("bigint").alias("units"),
        F.coalesce("order_amount", F.lit(0).cast(AMOUNT_TYPE)).alias("order_amount"),
    )


def order_item_facts(orders: DataFrame, order_items: DataFrame, start: date, end: date) -> DataFrame:
    """One row per line of an order placed in [start, end), with the order's date, status and currency."""
    placed = orders.withColumn("order_date", F.to_date("order_ts")).where(
        _in_window(F.col("order_date"), start, end)
    )
    # Orders on the left: the local engine builds its hash table from that side.
    return (
        placed.select("order_id", "order_date", "customer_id", "status", "currency")
        .join(order_items, "order_id")
        .select(
            "order_date",
            "order_id",
            "line_number",
            "customer_id",
            "product_id",
            "quantity",
            "unit_price",
            line_amount().alias("line_amount"),
            "currency",
            "status",
            (F.col("status") == CANCELLED).alias("is_cancelled"),
        )
    )


def daily_sales(item_facts: DataFrame, products: DataFrame) -> DataFrame:
    """Per order date, product category and currency: orders, units, revenue, average order value
    and the share of orders cancelled. An order counts once per category it has lines in. A
    product without a category, or an order without a currency, falls under ``unknown``."""
    lines = (
        products.select("product_id", "category")
        .join(item_facts, "product_id", "right")
        .withColumn("category", F.coalesce("category", F.lit(UNKNOWN_CATEGORY)))
        .withColumn("currency", F.coalesce("currency", F.lit(UNKNOWN_CURRENCY)))
    )
    kept = ~F.col("is_cancelled")
    grouped = lines.groupBy("order_date", "category", "currency").agg(
        F.count_distinct("order_id").alias("orders"),
        F.count_distinct(F.when(F.col("is_cancelled"), F.col("order_id"))).alias("cancelled_orders"),
        F.count_distinct(F.when(kept, F.col("order_id"))).alias("_kept_orders"),
        F.coalesce(F.sum(F.when(kept, F.col("quantity"))), F.lit(0)).cast("bigint").alias("units"),
        F.coalesce(F.sum(F.when(kept, F.col("line_amount"))), F.lit(0)).cast(AMOUNT_TYPE).alias("revenue"),
    )
    return grouped.select(
        "order_date",
        "category",
        "currency",
        "orders",
        "units",
        "revenue",
        average_to_cents(F.col("revenue"), F.col("_kept_orders")).alias("average_order_value"),
        (F.col("cancelled_orders") / F.col("orders")).alias("cancelled_share"),
    )


def customer_360(
    customers: DataFrame, orders: DataFrame, order_items: DataFrame, as_of_date: date
) -> DataFrame:
    """One row per customer: orders, revenue in USD, first and last order, days since the last
    order and the segment from the customers slice's rules. Lifetime revenue and the average
    order value are both rounded once from the exact USD total."""
    amounts = order_items.groupBy("order_id").agg(F.sum(line_amount()).alias("order_amount"))
    order_values = orders.join(amounts, "order_id", "left").select(
        "customer_id",
        "order_id",
        F.to_date("order_ts").alias("order_date"),
        (F.col("status") == CANCELLED).alias("is_cancelled"),
        to_usd(F.coalesce("order_amount", F.lit(0)), F.col("currency")).alias("amount_usd"),
    )
    kept = ~F.col("is_cancelled")
    per_customer = order_values.groupBy("customer_id").agg(
        F.min("order_date").alias("first_order_date"),
        F.max("order_date").alias("last_order_date"),
        F.count(F.when(kept, 1)).alias("order_count"),
        F.count(F.when(~kept, 1)).alias("cancelled_order_count"),
        F.sum(F.when(kept, F.col("amount_usd"))).alias("_revenue_usd"),
    )
    days = F.datediff(F.lit(as_of_date), F.col("last_order_date"))
    return (
        customers.select("customer_id", "first_name", "last_name", "email", "country")
        .join(per_customer, "customer_id", "left")
        .select(
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "country",
            "first_order_date",
            "last_order_date",
            F.coalesce("order_count", F.lit(0)).cast("bigint").alias("order_count"),
            F.coalesce("cancelled_order_count", F.lit(0)).cast("bigint").alias("cancelled_order_count"),
            rounded_to_cents(F.coalesce("_revenue_usd", F.lit(0))).alias("lifetime_revenue_usd"),
            # An order in a currency without a rate counts, adding no revenue: 0, not null.
            average_to_cents(F.coalesce("_revenue_usd", F.lit(0)), F.col("order_count")).alias(
                "average_order_value_usd"
            ),
            days.alias("days_since_last_activity"),
            segment(days).alias("customer_segment"),
        )
    )


def product_performance(products: DataFrame, orders: DataFrame, order_items: DataFrame) -> DataFrame:
    """Per product: the orders with a line of it (cancelled ones included), units and USD revenue
    of orders not cancelled, the share of units cancelled, and the product's rank by revenue
    within its category (1 = best)."""
    lines = (
        orders.select("order_id", "status", "currency")
        .join(order_items, "order_id")
        .select(
            "product_id",
            "order_id",
            "quantity",
            (F.col("status") == CANCELLED).alias("is_cancelled"),
            to_usd(line_amount(), F.col("currency")).alias("amount_usd"),
        )
    )
    kept = ~F.col("is_cancelled")
    sold = lines.groupBy("product_id").agg(
        F.count_distinct("order_id").alias("orders"),  # cancelled ones included
        F.sum(F.when(kept, F.col("quantity"))).alias("units_sold"),
        F.sum(F.when(~kept, F.col("quantity"))).alias("units_cancelled"),
        F.sum(F.when(kept, F.col("amount_usd"))).alias("revenue_usd"),
    )
    by_revenue = Window.partitionBy("category").orderBy(F.col("revenue_usd").desc(), F.col("product_id"))
    return (
        products.select("product_id", "sku", "name", "category")
        .join(sold, "product_id", "left")
        .select(
            "product_id",
            "sku",
            "name",
            "category",
            F.coalesce("orders", F.lit(0)).cast("bigint").alias("orders"),
            F.coalesce("units_sold", F.lit(0)).cast("bigint").alias("units_sold"),
            F.coalesce("units_cancelled", F.lit(0)).cast("bigint").alias("units_cancelled"),
            rounded_to_cents(F.coalesce("revenue_usd", F.lit(0))).alias("revenue_usd"),
        )
        .withColumn(
            "cancel_rate",
            F.when(
                F.col("units_sold") + F.col("units_cancelled") > 0,
                F.col("units_cancelled") / (F.col("units_sold") + F.col("units_cancelled")),
            ),
        )
        .withColumn("rank_in_category", F.rank().over(by_revenue))
    )
