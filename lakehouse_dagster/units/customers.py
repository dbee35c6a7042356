"""Units of the customers slice: CSV files -> bronze -> silver -> gold."""

from __future__ import annotations

from pyspark.sql import functions as F

from lakehouse_dagster.ingest.autoloader import FileSource
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.transforms.customers import (
    EMAIL_PATTERN,
    SEGMENTS,
    customer_segments,
    latest_customers,
    typed_customers,
)
from lakehouse_dagster.units.base import CheckOutcome, CheckSpec, Severity, TableUnit, UnitContext, UnitResult
from lakehouse_dagster.units.ingestion import file_ingestion_unit

BRONZE_CUSTOMERS = TableName("bronze", "customers")
SILVER_CUSTOMERS = TableName("silver", "customers")
GOLD_CUSTOMER_SEGMENTS = TableName("gold", "customer_segments")

CUSTOMERS_SOURCE = FileSource(
    folder="customers",
    columns=("customer_id", "first_name", "last_name", "email", "country", "signup_date", "last_activity"),
    column_types={"customer_id": "BIGINT", "signup_date": "DATE", "last_activity": "DATE"},
    required_columns=("customer_id",),
)

SEGMENT_LIST = ", ".join(f"'{name}'" for name in SEGMENTS)


def build_silver_customers(context: UnitContext) -> UnitResult:
    """Expectations see every typed record; rows without a customer_id go to quarantine."""
    tables = context.tables
    as_of_date = context.request.resolved_as_of_date()
    evaluation = context.evaluate(
        typed_customers(tables.read(BRONZE_CUSTOMERS)), key_columns=("_source_file", "_source_row")
    )
    tables.overwrite(SILVER_CUSTOMERS, latest_customers(evaluation.kept, as_of_date))
    quality, outcomes = context.record_quality(evaluation)

    silver = tables.read(SILVER_CUSTOMERS)
    unknown_segments = silver.where(~F.col("customer_segment").isin(*SEGMENTS)).count()
    outcomes.append(
        CheckOutcome(
            "customer_segment_allowed",
            passed=unknown_segments == 0,
            severity=Severity.ERROR,
            metadata={"rows_outside_segments": unknown_segments, "allowed": list(SEGMENTS)},
        )
    )
    kept_rows = evaluation.input_rows - evaluation.dropped_rows
    metadata = {
        "lakehouse/as_of_date": as_of_date.isoformat(),
        "lakehouse/bronze_rows": evaluation.input_rows,
        "lakehouse/bronze_rows_without_customer_id": evaluation.dropped_rows,
        "lakehouse/superseded_versions": kept_rows - silver.count(),
        **quality,
    }
    return context.result(metadata, outcomes)


def build_customer_segments(context: UnitContext) -> UnitResult:
    tables = context.tables
    silver = tables.read(SILVER_CUSTOMERS)
    evaluation = context.evaluate(customer_segments(silver))
    tables.overwrite(GOLD_CUSTOMER_SEGMENTS, evaluation.kept)
    quality, outcomes = context.record_quality(evaluation)
    silver_rows = silver.count()
    gold_stats = (
        tables.read(GOLD_CUSTOMER_SEGMENTS)
        .agg(F.sum("customers").alias("customers"), F.sum("share_of_customers").alias("share"))
        .first()
    )
    customers, total_share = gold_stats["customers"] or 0, gold_stats["share"] or 0.0
    outcomes += [
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
    return context.result({"lakehouse/customers": customers, **quality}, outcomes)


CUSTOMER_UNITS = (
    file_ingestion_unit(
        BRONZE_CUSTOMERS,
        CUSTOMERS_SOURCE,
        description="Raw customer records from CSV files in the landing zone, ingested once each, "
        "with ingestion metadata and _rescued_data.",
        group="customers",
        expectations=(
            Expectation(
                "customer_id_present", "customer_id IS NOT NULL", Action.WARN, "a usable customer_id"
            ),
        ),
    ),
    TableUnit(
        name=SILVER_CUSTOMERS,
        description="One cleaned, typed row per customer (the latest record), with days since "
        "activity and segment as of the run's date.",
        group="customers",
        run=build_silver_customers,
        inputs=(BRONZE_CUSTOMERS,),
        expectations=(
            Expectation(
                "customer_id_present", "customer_id IS NOT NULL", Action.DROP, "a usable customer_id"
            ),
            Expectation("valid_email", f"email RLIKE '{EMAIL_PATTERN}'", Action.WARN, "a well-formed email"),
            Expectation("known_country", "country RLIKE '^[A-Z]{2}$'", Action.WARN, "an ISO country code"),
            Expectation(
                "plausible_signup_date",
                "signup_date BETWEEN DATE'2000-01-01' AND DATE'{as_of_date}'",
                Action.WARN,
                "signed up between 2000 and the as-of date",
            ),
            Expectation(
                "plausible_last_activity",
                "last_activity BETWEEN signup_date AND DATE'{as_of_date}'",
                Action.WARN,
                "last active between sign-up and the as-of date",
            ),
        ),
        primary_key=("customer_id",),
        checks=(CheckSpec("customer_segment_allowed", f"customer_segment is one of {', '.join(SEGMENTS)}."),),
        uses_as_of_date=True,
    ),
    TableUnit(
        name=GOLD_CUSTOMER_SEGMENTS,
        description="Customers, share of all customers and average days since activity, "
        "per segment and country.",
        group="customers",
        run=build_customer_segments,
        inputs=(SILVER_CUSTOMERS,),
        expectations=(
            Expectation(
                "known_segment", f"customer_segment IN ({SEGMENT_LIST})", Action.FAIL, "a known segment"
            ),
            Expectation(
                "share_is_a_share", "share_of_customers BETWEEN 0 AND 1", Action.FAIL, "a share in [0, 1]"
            ),
            Expectation("customers_positive", "customers > 0", Action.WARN, "every row counts customers"),
        ),
        primary_key=("customer_segment", "country"),
        checks=(
            CheckSpec("customers_reconcile_with_silver", "Segment counts add up to the customers in silver."),
            CheckSpec("shares_sum_to_one", "Shares of customers add up to 1."),
        ),
    ),
)
