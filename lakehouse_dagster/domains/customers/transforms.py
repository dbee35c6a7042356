"""The customers slice: bronze.customers -> silver.customers -> gold.customer_segments."""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.order import (
    INGESTION_ORDER,
    date_then_ordinal,
    latest_per_key,
    with_ingestion_ordinal,
)

SEGMENTS = ("active", "recent", "inactive")
ACTIVE_MAX_DAYS = 30
RECENT_MAX_DAYS = 90
UNKNOWN_COUNTRY = "UNKNOWN"


#: What Python's ``str.strip`` strips (``str.isspace``); ``trim`` strips spaces only.
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


def _text(column: str) -> Column:
    """Text stripped of whitespace at both ends (tabs and no-break spaces too); empty becomes null."""
    trimmed = F.btrim(F.col(column).cast("string"), F.lit(_WHITESPACE))
    return F.when(trimmed != "", trimmed)


def _as_date(column: str) -> Column:
    return F.expr(f"try_cast({column} AS DATE)")


def segment(days_since_activity: Column) -> Column:
    """``active`` up to 30 days, ``recent`` up to 90, otherwise (or unknown) ``inactive``."""
    return (
        F.when(days_since_activity <= ACTIVE_MAX_DAYS, F.lit("active"))
        .when(days_since_activity <= RECENT_MAX_DAYS, F.lit("recent"))
        .otherwise(F.lit("inactive"))
    )


def typed_customers(bronze: DataFrame) -> DataFrame:
    """Bronze records typed and cleaned, one row per record: what the expectations look at."""
    loyalty_tier = F.lower(_text("loyalty_tier")) if "loyalty_tier" in bronze.columns else F.lit(None)
    return bronze.select(
        F.expr("try_cast(customer_id AS BIGINT)").alias("customer_id"),
        _text("first_name").alias("first_name"),
        _text("last_name").alias("last_name"),
        F.lower(_text("email")).alias("email"),
        F.upper(_text("country")).alias("country"),
        _as_date("signup_date").alias("signup_date"),
        _as_date("last_activity").alias("last_activity"),
        loyalty_tier.cast("string").alias("loyalty_tier"),
        *(F.col(column) for column in INGESTION_ORDER),
    )


def latest_customers(typed: DataFrame, as_of_date: date) -> DataFrame:
    """One row per ``customer_id``: the latest record by ``last_activity``, then by ingestion, with
    ``days_since_activity`` counted from ``as_of_date`` (the run's date, never the clock)."""
    ordered = with_ingestion_ordinal(typed, "_ingestion_ordinal")
    latest = latest_per_key(
        ordered, "customer_id", date_then_ordinal(F.col("last_activity"), F.col("_ingestion_ordinal"))
    )
    days = F.datediff(F.lit(as_of_date), F.col("last_activity"))
    return latest.select(
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "country",
        "signup_date",
        "last_activity",
        "loyalty_tier",
        days.alias("days_since_activity"),
        segment(days).alias("customer_segment"),
        F.col("_source_file"),
        F.col("_batch_id"),
    )


def clean_customers(bronze: DataFrame, as_of_date: date) -> DataFrame:
    """Bronze to silver in one go (rows without a usable ``customer_id`` are left out)."""
    return latest_customers(typed_customers(bronze), as_of_date)


def customer_segments(silver: DataFrame) -> DataFrame:
    """Customers, their share of all customers, and average days since activity, by segment and country.

    The share and the average are doubles made by one division of two exact integers (counts, a
    sum of days), which IEEE 754 rounds correctly: the same bits on every engine, however the
    rows are split. ``F.avg`` would leave the summing to the engine.
    """
    everyone = Window.partitionBy(F.lit(1))
    days = F.col("days_since_activity")
    return (
        silver.groupBy(
            F.col("customer_segment"),
            F.coalesce(F.col("country"), F.lit(UNKNOWN_COUNTRY)).alias("country"),
        )
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.sum(days.cast("bigint")).alias("_days"),
            F.count(days).alias("_dated"),
        )
        .select(
            "customer_segment",
            "country",
            "customers",
            (F.col("customers") / F.sum("customers").over(everyone)).alias("share_of_customers"),
            F.when(F.col("_dated") > 0, F.col("_days") / F.col("_dated")).alias("avg_days_since_activity"),
        )
    )
