"""Units of the customers slice: CSV files -> bronze -> silver -> gold."""

from __future__ import annotations

from pyspark.sql import functions as F

from lakehouse_dagster.ingest.autoloader import FileSource
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.transforms.customers import SEGMENTS, clean_customers, customer_segments
from lakehouse_dagster.units.base import (
    CheckOutcome,
    CheckSpec,
    Severity,
    TableUnit,
    UnitContext,
    UnitResult,
    describe,
)
from lakehouse_dagster.units.ingestion import file_ingestion_unit

BRONZE_CUSTOMERS = TableName("bronze", "customers")
SILVER_CUSTOMERS = TableName("silver", "customers")
GOLD_CUSTOMER_SEGMENTS = TableName("gold", "customer_segments")

CUSTOMERS_SOURCE = FileSource(
    folder="customers",
    columns=("customer_id", "first_name", "last_name", "email", "country", "signup_date", "last_activity"),
    column_types={"customer_id": "BIGINT", "signup_date": "DATE", "last_activity": "DATE"},
)


# silver.customers -----------------------------------------------------------------------


def build_silver_customers(context: UnitContext) -> UnitResult:
    tables = context.tables
    as_of_date = context.request.resolved_as_of_date()
    bronze = tables.read(BRONZE_CUSTOMERS)
    tables.overwrite(SILVER_CUSTOMERS, clean_customers(bronze, as_of_date))

    bronze_stats = bronze.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.expr("try_cast(customer_id AS BIGINT)")).alias("with_id"),
    ).first()
    silver_stats = (
        tables.read(SILVER_CUSTOMERS)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("customer_id").alias("with_id"),
            F.count_distinct("customer_id").alias("distinct_ids"),
            F.count(F.when(~F.col("customer_segment").isin(*SEGMENTS), 1)).alias("unknown_segments"),
        )
        .first()
    )
    rows, with_id = silver_stats["rows"], silver_stats["with_id"]
    checks = [
        CheckOutcome(
            "customer_id_not_null",
            passed=with_id == rows,
            severity=Severity.ERROR,
            metadata={"null_customer_ids": rows - with_id},
        ),
        CheckOutcome(
            "customer_id_unique",
            passed=silver_stats["distinct_ids"] == with_id,
            severity=Severity.ERROR,
            metadata={"duplicate_rows": with_id - silver_stats["distinct_ids"]},
        ),
        CheckOutcome(
            "customer_segment_allowed",
            passed=silver_stats["unknown_segments"] == 0,
            severity=Severity.ERROR,
            metadata={"rows_outside_segments": silver_stats["unknown_segments"], "allowed": list(SEGMENTS)},
        ),
    ]
    metadata = {
        "lakehouse/as_of_date": as_of_date.isoformat(),
        "lakehouse/bronze_rows": bronze_stats["rows"],
        "lakehouse/bronze_rows_without_customer_id": bronze_stats["rows"] - bronze_stats["with_id"],
        "lakehouse/superseded_versions": bronze_stats["with_id"] - rows,
    }
    return describe(tables, SILVER_CUSTOMERS, metadata, checks)


# gold.customer_segments -----------------------------------------------------------------


def build_customer_segments(context: UnitContext) -> UnitResult:
    tables = context.tables
    silver = tables.read(SILVER_CUSTOMERS)
    tables.overwrite(GOLD_CUSTOMER_SEGMENTS, customer_segments(silver))
    silver_rows = silver.count()
    gold_stats = (
        tables.read(GOLD_CUSTOMER_SEGMENTS)
        .agg(F.sum("customers").alias("customers"), F.sum("share_of_customers").alias("share"))
        .first()
    )
    customers, total_share = gold_stats["customers"] or 0, gold_stats["share"] or 0.0
    checks = [
        CheckOutcome(
            "customers_reconcile_with_silver",
            passed=customers == silver_rows,
            severity=Severity.ERROR,
            metadata={"gold_customers": customers, "silver_customers": silver_rows},
        ),
        CheckOutcome(
            "shares_sum_to_one",
            passed=silver_rows == 0 or abs(total_share - 1.0) < 1e-9,
            severity=Severity.ERROR,
            metadata={"sum_of_shares": total_share},
        ),
    ]
    return describe(tables, GOLD_CUSTOMER_SEGMENTS, {"lakehouse/customers": customers}, checks)


CUSTOMER_UNITS = (
    file_ingestion_unit(
        BRONZE_CUSTOMERS,
        CUSTOMERS_SOURCE,
        description="Raw customer records from CSV files in the landing zone, ingested once each, "
        "with ingestion metadata and _rescued_data.",
        group="customers",
    ),
    TableUnit(
        name=SILVER_CUSTOMERS,
        description="One cleaned, typed row per customer (the latest record), with days since "
        "activity and segment as of the run's date.",
        group="customers",
        run=build_silver_customers,
        inputs=(BRONZE_CUSTOMERS,),
        checks=(
            CheckSpec("customer_id_not_null", "Every row has a customer_id."),
            CheckSpec("customer_id_unique", "customer_id identifies one row."),
            CheckSpec("customer_segment_allowed", f"customer_segment is one of {', '.join(SEGMENTS)}."),
        ),
        uses_as_of_date=True,
    ),
    TableUnit(
        name=GOLD_CUSTOMER_SEGMENTS,
        description="Customers, share of all customers and average days since activity, "
        "per segment and country.",
        group="customers",
        run=build_customer_segments,
        inputs=(SILVER_CUSTOMERS,),
        checks=(
            CheckSpec("customers_reconcile_with_silver", "Segment counts add up to the customers in silver."),
            CheckSpec("shares_sum_to_one", "Shares of customers add up to 1."),
        ),
    ),
)
