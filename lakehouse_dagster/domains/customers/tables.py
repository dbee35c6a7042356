"""The customers domain: CRM exports (CSV files) -> bronze -> silver -> gold segments.

Every fact about a table is declared here: its source, expectations, checks and column docs.
The transforms are pure functions in ``transforms.py``.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.ingest.sources import FileSource
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality import rules
from lakehouse_dagster.quality.checks import CheckOutcome
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.quality.table_checks import table_check
from lakehouse_dagster.serving.spec import Serving
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.writes import overwrite_table

from .transforms import SEGMENTS, customer_segments, latest_customers, typed_customers

BRONZE_CUSTOMERS = TableName("bronze", "customers")
SILVER_CUSTOMERS = TableName("silver", "customers")
CUSTOMER_SEGMENTS = TableName("gold", "customer_segments")

CRM_EXPORTS = FileSource(
    folder="customers",
    columns=("customer_id", "first_name", "last_name", "email", "country", "signup_date", "last_activity"),
    column_types={"customer_id": "BIGINT", "signup_date": "DATE", "last_activity": "DATE"},
    required_columns=("customer_id",),
)
CUSTOMER_ID_PRESENT = "customer_id_present"
KNOWN_SEGMENT = rules.one_of("known_segment", "customer_segment", SEGMENTS, Action.FAIL, "a known segment")


def build_silver_customers(context: UnitContext) -> UnitResult:
    """Expectations see every typed record; rows without a customer_id go to quarantine. Bronze
    is read at one version: the evaluation, the write and the quarantine each read it, and an
    ingestion may commit between them."""
    tables = context.tables
    as_of_date = context.request.as_of_date
    evaluation = context.evaluate(
        typed_customers(tables.read(BRONZE_CUSTOMERS, pinned=True)),
        key_columns=("_source_file", "_source_row"),
    )
    tables.overwrite(SILVER_CUSTOMERS, latest_customers(evaluation.kept, as_of_date))
    quality = context.quarantine_and_report(evaluation)
    kept_rows = evaluation.input_rows - evaluation.dropped_rows
    metadata = {
        "lakehouse/as_of_date": as_of_date.isoformat(),
        # Bronze rows evaluated and kept out are lakehouse/rows_evaluated and _quarantined.
        "lakehouse/superseded_versions": kept_rows - tables.read(SILVER_CUSTOMERS).count(),
        **quality.metadata,
    }
    return context.result(metadata, quality.outcomes)


def build_customer_segments(context: UnitContext) -> UnitResult:
    segments = customer_segments(context.tables.read(SILVER_CUSTOMERS))
    customers = context.tables.read(SILVER_CUSTOMERS).count()
    return overwrite_table(context, segments, {"lakehouse/customers": customers})


def _segments_allowed(context: UnitContext) -> CheckOutcome:
    unknown = context.tables.read(SILVER_CUSTOMERS).where(~F.col("customer_segment").isin(*SEGMENTS)).count()
    return CheckOutcome(
        "customer_segment_allowed",
        passed=unknown == 0,
        severity=SEGMENT_CHECK.spec.severity,
        metadata={"rows_outside_segments": unknown, "allowed": list(SEGMENTS)},
    )


def _gold_totals(context: UnitContext):
    return (
        context.tables.read(CUSTOMER_SEGMENTS)
        .agg(F.sum("customers").alias("customers"), F.sum("share_of_customers").alias("share"))
        .first()
    )


def _reconciles(context: UnitContext) -> CheckOutcome:
    gold = _gold_totals(context)["customers"] or 0
    silver = context.tables.read(SILVER_CUSTOMERS).count()
    return CheckOutcome(
        "customers_reconcile_with_silver",
        passed=gold == silver,
        severity=RECONCILE_CHECK.spec.severity,
        description=f"{gold} customers in the segments, {silver} in {SILVER_CUSTOMERS}",
        metadata={"gold_customers": gold, "silver_customers": silver},
    )


def _shares_sum_to_one(context: UnitContext) -> CheckOutcome:
    total = _gold_totals(context)["share"] or 0.0
    empty = context.tables.read(SILVER_CUSTOMERS).isEmpty()
    return CheckOutcome(
        "shares_sum_to_one",
        passed=empty or abs(total - 1.0) < 1e-9,
        severity=SHARES_CHECK.spec.severity,
        metadata={"sum_of_shares": total},
    )


SEGMENT_CHECK = table_check(
    "customer_segment_allowed", f"customer_segment is one of {', '.join(SEGMENTS)}.", _segments_allowed
)
RECONCILE_CHECK = table_check(
    "customers_reconcile_with_silver", "Segment counts add up to the customers in silver.", _reconciles
)
SHARES_CHECK = table_check("shares_sum_to_one", "Shares of customers add up to 1.", _shares_sum_to_one)

DOMAIN = Domain(
    name="customers",
    description="Customers as the CRM exports them, cleaned to one row each, and segmented by activity.",
    owners=("team:crm-data",),
    tables=(
        Table(
            name=BRONZE_CUSTOMERS,
            description="Raw customer records from CSV files in the landing zone, ingested once each, "
            "with ingestion metadata and _rescued_data.",
            source=CRM_EXPORTS,
            expectations=(
                Expectation(
                    CUSTOMER_ID_PRESENT, "customer_id IS NOT NULL", Action.WARN, "a usable customer_id"
                ),
            ),
            column_docs={
                "customer_id": "CRM customer id; null when not a number (the text is in _rescued_data).",
                "first_name": "First name, as exported (sometimes empty).",
                "last_name": "Last name, as exported (sometimes empty).",
                "email": "As exported: mixed case, padded, sometimes empty.",
                "country": "ISO 3166 alpha-2 code as exported (NA is Namibia).",
                "signup_date": "Sign-up date; null when unparseable.",
                "last_activity": "Date of the customer's last activity; null when unparseable.",
                "loyalty_tier": "Added by later exports (a new column).",
            },
        ),
        Table(
            name=SILVER_CUSTOMERS,
            description="One cleaned, typed row per customer (the latest record), with days since "
            "activity and segment as of the run's date.",
            build=build_silver_customers,
            inputs=(BRONZE_CUSTOMERS,),
            expectations=(
                Expectation(
                    CUSTOMER_ID_PRESENT, "customer_id IS NOT NULL", Action.DROP, "a usable customer_id"
                ),
                rules.valid_email(),
                rules.known_country(),
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
            checks=(SEGMENT_CHECK,),
            uses_as_of_date=True,
            column_docs={
                "customer_id": "CRM customer id.",
                "first_name": "First name (of the latest record).",
                "last_name": "Last name (of the latest record).",
                "email": "Trimmed and lower-cased.",
                "country": "Upper-cased ISO code; null when missing.",
                "signup_date": "Sign-up date; null when unparseable.",
                "last_activity": "Date of the last activity: the latest record's.",
                "loyalty_tier": "Loyalty tier, from the exports that have the column; else null.",
                "days_since_activity": "Days from last_activity to the run's as-of date.",
                "customer_segment": "active (<= 30 days), recent (<= 90), else (or unknown) inactive.",
                "_source_file": "The landed file of the record kept.",
                "_batch_id": "The bronze batch of the record kept.",
            },
        ),
        Table(
            name=CUSTOMER_SEGMENTS,
            serving=Serving(),
            description="Customers, share of all customers and average days since activity, by segment "
            "and country.",
            build=build_customer_segments,
            inputs=(SILVER_CUSTOMERS,),
            expectations=(
                KNOWN_SEGMENT,
                Expectation(
                    "share_is_a_share", "share_of_customers BETWEEN 0 AND 1", Action.FAIL, "a share in [0, 1]"
                ),
                Expectation("customers_positive", "customers > 0", Action.WARN, "every row counts customers"),
            ),
            primary_key=("customer_segment", "country"),
            checks=(RECONCILE_CHECK, SHARES_CHECK),
            column_docs={
                "customer_segment": "active, recent or inactive.",
                "country": "ISO code, or UNKNOWN.",
                "customers": "Customers in the segment and country.",
                "share_of_customers": "customers / all customers (a double: one division of two counts).",
                "avg_days_since_activity": "Days since activity added up / customers whose last activity is "
                "known (a double: one division of two integers); null when none is known.",
            },
            column_lineage={
                "customer_segment": ((SILVER_CUSTOMERS, "customer_segment"),),
                "country": ((SILVER_CUSTOMERS, "country"),),
                "customers": ((SILVER_CUSTOMERS, "customer_id"),),
                "share_of_customers": ((SILVER_CUSTOMERS, "customer_id"),),
                "avg_days_since_activity": ((SILVER_CUSTOMERS, "days_since_activity"),),
            },
        ),
    ),
)
