"""Customer features as of a date, and churn labels: pure transforms over the sales silver tables.

Point in time: a feature as of day ``D`` uses only what was known at the end of ``D`` (UTC):
- customers: the version of ``silver.sales_customers_history`` (SCD2) current at the end of ``D``
  (a customer created, deleted or moved later is seen as it was);
- orders: those placed on or before ``D``; an order counts as cancelled only if the change that
  cancelled it was committed on or before ``D`` (``dms_commit_ts``; cancelled is final, so the
  current state's commit time is the cancellation's).
What the current-state tables cannot tell is documented where it matters: an order deleted after
``D`` is no longer in ``silver.sales_orders``, so features recomputed later for ``D`` miss it.

Labels: a customer *churned* after ``D`` if they placed no order in the ``horizon`` days after it,
``(D, D + horizon]``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.cdc.transforms import END_AT, START_AT
from lakehouse_dagster.domains.customers.transforms import segment
from lakehouse_dagster.domains.sales.source import CANCELLED, SEQUENCE
from lakehouse_dagster.domains.sales.transforms import line_amount, rounded_to_cents, to_usd

#: The model's inputs, numeric then categorical.
NUMERIC_FEATURES = (
    "recency_days",
    "frequency",
    "monetary_usd",
    "tenure_days",
    "cancel_share",
    "orders_last_30_days",
    "orders_last_90_days",
)
CATEGORICAL_FEATURES = ("segment",)
LABEL = "churned"
FEATURE_DATE = "feature_date"
AS_OF_DATE = "as_of_date"


class NotEnoughHistoryError(ValueError):
    """The orders do not reach far enough back for a training feature date."""


def _end_of(day: date) -> Column:
    """The first instant after ``day`` (UTC): what was known on ``day`` is strictly before it.
    An aware instant: PySpark reads a naive ``datetime`` in the Python process's time zone."""
    return F.lit(datetime.combine(day + timedelta(days=1), time(), UTC))


def customers_as_of(customers_history: DataFrame, as_of: date) -> DataFrame:
    """customer_id, country, created_at of every customer that existed at the end of ``as_of``.
    A customer's first version counts from its ``created_at`` (the full load's versions start at
    the load, not when the customer was created)."""
    end = _end_of(as_of)
    first_start = customers_history.groupBy("customer_id").agg(
        F.min(F.col(f"{START_AT}.{SEQUENCE}")).alias("_first_start")
    )
    versions = customers_history.join(first_start, "customer_id").withColumn(
        "_valid_from",
        F.when(
            F.col(f"{START_AT}.{SEQUENCE}") == F.col("_first_start"),
            F.least(F.col("created_at"), F.col(f"{START_AT}.{SEQUENCE}")),
        ).otherwise(F.col(f"{START_AT}.{SEQUENCE}")),
    )
    valid = (F.col("_valid_from") < end) & (F.col(END_AT).isNull() | (F.col(f"{END_AT}.{SEQUENCE}") >= end))
    return versions.where(valid).select("customer_id", "country", "created_at")


def orders_as_of(orders: DataFrame, order_items: DataFrame, as_of: date) -> DataFrame:
    """customer_id, order_date, is_cancelled (as known at the end of ``as_of``), amount_usd of every
    order placed on or before ``as_of``."""
    end = _end_of(as_of)
    amounts = order_items.groupBy("order_id").agg(F.sum(line_amount()).alias("order_amount"))
    return (
        orders.where(F.col("order_ts") < end)
        .join(amounts, "order_id", "left")
        .select(
            "customer_id",
            F.to_date("order_ts").alias("order_date"),
            ((F.col("status") == CANCELLED) & (F.col(SEQUENCE) < end)).alias("is_cancelled"),
            to_usd(F.coalesce("order_amount", F.lit(0)), F.col("currency")).alias("amount_usd"),
        )
    )


def customer_features(
    customers_history: DataFrame, orders: DataFrame, order_items: DataFrame, as_of: date
) -> DataFrame:
    """One row per customer existing at the end of ``as_of``:

    - ``recency_days``: days from the last order to ``as_of`` (from becoming a customer, if none);
    - ``frequency``: orders not cancelled; ``monetary_usd``: their value in USD (the exact sum of
      the exact conversions, rounded once to cents);
    - ``tenure_days``: days since the customer was created;
    - ``segment``: active (last order <= 30 days ago), recent (<= 90) or inactive;
    - ``cancel_share``: cancelled orders / orders (0 without orders);
    - ``orders_last_30_days`` / ``orders_last_90_days``: orders placed in the 30 / 90 days ending
      on ``as_of``, cancelled ones included.
    """
    known = orders_as_of(orders, order_items, as_of)
    per_customer = known.groupBy("customer_id").agg(
        F.max("order_date").alias("last_order_date"),
        F.count(F.lit(1)).alias("orders"),
        F.count(F.when(F.col("is_cancelled"), 1)).alias("cancelled"),
        F.sum(F.when(~F.col("is_cancelled"), F.col("amount_usd"))).alias("monetary_usd"),
        F.count(F.when(F.col("order_date") > F.lit(as_of - timedelta(days=30)), 1)).alias("last_30"),
        F.count(F.when(F.col("order_date") > F.lit(as_of - timedelta(days=90)), 1)).alias("last_90"),
    )
    tenure = F.greatest(F.datediff(F.lit(as_of), F.to_date("created_at")), F.lit(0))
    orders_placed = F.coalesce("orders", F.lit(0))
    return (
        customers_as_of(customers_history, as_of)
        .join(per_customer, "customer_id", "left")
        .select(
            "customer_id",
            F.lit(as_of).alias(AS_OF_DATE),
            F.coalesce(F.datediff(F.lit(as_of), F.col("last_order_date")), tenure)
            .cast("int")
            .alias("recency_days"),
            (orders_placed - F.coalesce("cancelled", F.lit(0))).cast("bigint").alias("frequency"),
            rounded_to_cents(F.coalesce("monetary_usd", F.lit(0))).alias("monetary_usd"),
            tenure.cast("int").alias("tenure_days"),
            segment(F.datediff(F.lit(as_of), F.col("last_order_date"))).alias("segment"),
            F.when(orders_placed > 0, F.col("cancelled") / F.col("orders"))
            .otherwise(F.lit(0.0))
            .cast("double")
            .alias("cancel_share"),
            F.coalesce("last_30", F.lit(0)).cast("bigint").alias("orders_last_30_days"),
            F.coalesce("last_90", F.lit(0)).cast("bigint").alias("orders_last_90_days"),
            "country",
        )
    )


def churn_labels(
    customer_ids: DataFrame, orders: DataFrame, feature_date: date, horizon_days: int
) -> DataFrame:
    """customer_id, churned: no order placed in ``(feature_date, feature_date + horizon_days]``."""
    start, end = _end_of(feature_date), _end_of(feature_date + timedelta(days=horizon_days))
    ordered = (
        orders.where((F.col("order_ts") >= start) & (F.col("order_ts") < end))
        .select("customer_id")
        .distinct()
        .withColumn("_ordered", F.lit(True))
    )
    return customer_ids.join(ordered, "customer_id", "left").select(
        "customer_id", F.col("_ordered").isNull().alias(LABEL)
    )


def training_dates(
    as_of: date, horizon_days: int, first_order: date, step_days: int, snapshots: int, min_history_days: int
) -> tuple[date, list[date]]:
    """The holdout's feature date (``as_of - horizon``: its labels end on ``as_of``) and the training
    feature dates before it, ``step_days`` apart, whose labels end on or before the holdout's
    feature date (no label window overlaps the holdout's), each with ``min_history_days`` of
    orders before it."""
    holdout = as_of - timedelta(days=horizon_days)
    latest_training = holdout - timedelta(days=horizon_days)
    earliest = first_order + timedelta(days=min_history_days)
    training = [
        day for k in range(snapshots) if (day := latest_training - timedelta(days=k * step_days)) >= earliest
    ]
    if not training:
        raise NotEnoughHistoryError(
            f"not enough history to train as of {as_of}: with a horizon of {horizon_days} days the "
            f"latest training feature date is {latest_training}, but orders start on {first_order} and "
            f"features need {min_history_days} days of them (first possible: {earliest})"
        )
    return holdout, sorted(training)


def churn_training_set(
    customers_history: DataFrame,
    orders: DataFrame,
    order_items: DataFrame,
    holdout_date: date,
    training_dates: list[date],
    horizon_days: int,
) -> DataFrame:
    """Features as of each feature date with their labels, and ``split``: ``train`` for the
    training dates, ``holdout`` for the holdout date (the latest)."""
    frames = []
    for feature_date, split in [*((d, "train") for d in training_dates), (holdout_date, "holdout")]:
        features = customer_features(customers_history, orders, order_items, feature_date)
        labels = churn_labels(features.select("customer_id"), orders, feature_date, horizon_days)
        frames.append(
            features.join(labels, "customer_id")
            .withColumnRenamed(AS_OF_DATE, FEATURE_DATE)
            .withColumn("split", F.lit(split))
        )
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result
