"""The ml domain: customer features from the sales tables, a churn model tracked and registered
with MLflow, and churn scores of every customer by the champion model.

    silver.sales_* -> gold.customer_features (as of the run's date) ----> gold.customer_churn_scores
                   -> ml.churn_training_set -> ml.churn_model (champion) ----^

The gold tables are served to the warehouse like every gold table (BI sees each customer's risk).

Every table is a unit like any other (it runs in process, in a subprocess or on a Databricks
cluster); the units that train and score reach MLflow through the unit's model store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.domains.sales.money import ROUNDED
from lakehouse_dagster.domains.sales.tables import SALES_CUSTOMERS_HISTORY, SALES_ORDER_ITEMS, SALES_ORDERS
from lakehouse_dagster.lake.delta import DateWindow
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.ml.drift import population_stability_index
from lakehouse_dagster.ml.training import ClassifierSpec, predict, train_and_register
from lakehouse_dagster.quality.checks import CheckOutcome, CheckSpec, Severity
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.quality.table_checks import TableCheck, table_check
from lakehouse_dagster.serving.spec import Serving
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.writes import overwrite_table

from . import features as ml

CUSTOMER_FEATURES = TableName("gold", "customer_features")
CHURN_TRAINING_SET = TableName("ml", "churn_training_set")
CHURN_MODEL = TableName("ml", "churn_model")
CHURN_SCORES = TableName("gold", "customer_churn_scores")


@dataclass(frozen=True)
class ChurnModel:
    """The churn model's declaration: what it predicts, from which features, how it is trained."""

    #: Registered as this name (``<catalog>.ml.<name>`` in Unity Catalog).
    name: str = "churn_model"
    #: Churned = no order in the ``horizon_days`` after the feature date.
    horizon_days: int = 60
    #: Training feature dates: up to ``snapshots``, ``step_days`` apart, with ``min_history_days``
    #: of orders before each.
    snapshots: int = 4
    step_days: int = 7
    min_history_days: int = 28
    spec: ClassifierSpec = field(
        default_factory=lambda: ClassifierSpec(ml.LABEL, ml.NUMERIC_FEATURES, ml.CATEGORICAL_FEATURES)
    )
    #: A customer whose churn probability is at least this is high-risk.
    high_risk: float = 0.5
    #: Risk bands, by probability: the distribution the drift check compares.
    risk_bands: tuple[float, ...] = (0.0, 0.2, 0.5, 1.0)
    #: The drift check's PSI limit when the thresholds file sets none.
    default_max_psi: float = 0.25


CHURN = ChurnModel()
DRIFT_CHECK = "high_risk_drift"
ENOUGH_HISTORY = "enough_history"


# Writes of one as-of date ---------------------------------------------------------------------


def _day(as_of: date) -> DateWindow:
    return DateWindow(ml.AS_OF_DATE, as_of, as_of + timedelta(days=1))


def replace_as_of(context: UnitContext, frame: DataFrame, metadata: dict[str, Any]) -> UnitResult:
    """Expectations, then replace the rows of the run's as-of date in one commit: a rerun for the
    same date replaces its rows; other dates stay."""
    evaluation = context.evaluate(frame)
    context.tables.replace_window(context.name, evaluation.kept, _day(context.request.as_of_date))
    quality = context.quarantine_and_report(evaluation)
    return context.result({**metadata, **quality.metadata}, quality.outcomes)


def _as_of_rows(context: UnitContext, name: TableName, as_of: date) -> DataFrame:
    if not context.tables.exists(name):
        raise ValueError(f"{context.name} needs {name}, which does not exist yet: materialise it first")
    return context.tables.read(name).where(_day(as_of).condition())


# Builds ---------------------------------------------------------------------------------------


def build_customer_features(context: UnitContext) -> UnitResult:
    tables, as_of = context.tables, context.request.as_of_date
    frame = ml.customer_features(
        tables.read(SALES_CUSTOMERS_HISTORY), tables.read(SALES_ORDERS), tables.read(SALES_ORDER_ITEMS), as_of
    )
    return overwrite_table(context, frame, {"lakehouse/as_of_date": as_of.isoformat()})


def order_dates(orders: DataFrame) -> tuple[date, date]:
    """The first and last order dates."""
    first, last = orders.agg(F.min(F.to_date("order_ts")), F.max(F.to_date("order_ts"))).first()
    if first is None:
        raise ValueError(f"{SALES_ORDERS} has no orders: nothing to learn churn from")
    return first, last


def training_as_of(context: UnitContext, orders: DataFrame) -> date:
    """The run's as-of date, or the last order date if the data ends before it: labels are only as
    complete as the data (a run long after the last order would call every customer churned)."""
    return min(context.request.as_of_date, order_dates(orders)[1])


def _training_dates(context: UnitContext) -> tuple[date, tuple[date, list[date]]]:
    """The labels' end (see ``training_as_of``), the holdout and the training feature dates; raises
    ``NotEnoughHistoryError`` while the orders are too recent."""
    orders = context.tables.read(SALES_ORDERS)
    first_order, _ = order_dates(orders)
    as_of = training_as_of(context, orders)
    return as_of, ml.training_dates(
        as_of, CHURN.horizon_days, first_order, CHURN.step_days, CHURN.snapshots, CHURN.min_history_days
    )


def build_churn_training_set(context: UnitContext) -> UnitResult:
    """The training set; empty (its check says why) while the orders do not go back far enough."""
    tables = context.tables
    history, orders, items = (
        tables.read(n) for n in (SALES_CUSTOMERS_HISTORY, SALES_ORDERS, SALES_ORDER_ITEMS)
    )
    metadata: dict[str, Any] = {
        "lakehouse/as_of_date": context.request.as_of_date.isoformat(),
        "ml/horizon_days": CHURN.horizon_days,
    }
    try:
        as_of, (holdout, training) = _training_dates(context)
    except ml.NotEnoughHistoryError as error:
        day = context.request.as_of_date
        empty = ml.churn_training_set(history, orders, items, day, [day], CHURN.horizon_days).limit(0)
        return overwrite_table(context, empty, {**metadata, "ml/decision": str(error)})
    frame = ml.churn_training_set(history, orders, items, holdout, training, CHURN.horizon_days)
    return overwrite_table(
        context,
        frame,
        {
            **metadata,
            "ml/labels_end": as_of.isoformat(),
            "ml/holdout_feature_date": holdout.isoformat(),
            "ml/training_feature_dates": ", ".join(d.isoformat() for d in training),
        },
    )


def _enough_history(context: UnitContext) -> CheckOutcome:
    try:
        _, (holdout, training) = _training_dates(context)
    except ml.NotEnoughHistoryError as error:
        return CheckOutcome(ENOUGH_HISTORY, passed=False, severity=Severity.WARN, description=str(error))
    return CheckOutcome(
        ENOUGH_HISTORY,
        passed=True,
        severity=Severity.WARN,
        metadata={"holdout_feature_date": holdout.isoformat(), "training_feature_dates": len(training)},
    )


def build_churn_model(context: UnitContext) -> UnitResult:
    """Train on the training set's ``train`` rows, evaluate on its holdout, log and register a
    version, promote it only if it beats the champion on the same holdout; one row per as-of date."""
    as_of = training_as_of(context, context.tables.read(SALES_ORDERS))
    rows = context.tables.read(CHURN_TRAINING_SET).toPandas()
    if rows.empty:
        nothing = context.spark.createDataFrame([], schema=_MODEL_SCHEMA)
        reason = f"not trained: {CHURN_TRAINING_SET} is empty (see its {ENOUGH_HISTORY} check)"
        return replace_as_of(context, nothing, {"ml/trained": False, "ml/decision": reason})
    expected_holdout = as_of - timedelta(days=CHURN.horizon_days)
    holdout_dates = set(rows.loc[rows["split"] == "holdout", ml.FEATURE_DATE])
    if holdout_dates != {expected_holdout}:
        found = ", ".join(sorted(str(d) for d in holdout_dates)) or "none"
        raise ValueError(
            f"{CHURN_TRAINING_SET} holds holdout rows as of {found}, not {expected_holdout} "
            f"({as_of} minus the {CHURN.horizon_days}-day horizon): materialise it for {as_of} first"
        )
    outcome = train_and_register(
        context.model_store(),
        CHURN.name,
        CHURN.spec,
        rows,
        run_name=f"{CHURN.name} as of {as_of}",
        tags={"lakehouse/run_id": context.request.run_id, "lakehouse/as_of_date": as_of.isoformat()},
    )
    metrics, champion = outcome.metrics, outcome.previous_champion
    record = {
        ml.AS_OF_DATE: context.request.as_of_date,
        "holdout_feature_date": expected_holdout,
        "model_name": outcome.version.name,
        "model_version": outcome.version.version,
        "mlflow_run_id": outcome.version.run_id,
        "roc_auc": metrics["roc_auc"],
        "pr_auc": metrics["pr_auc"],
        "brier": metrics["brier"],
        "calibration_error": metrics["calibration_error"],
        "base_rate": metrics["base_rate"],
        "training_rows": int(metrics["training_rows"]),
        "holdout_rows": int(metrics["holdout_rows"]),
        "previous_champion_version": champion.version if champion else None,
        "previous_champion_roc_auc": outcome.champion_metrics.get("roc_auc"),
        "promoted": outcome.promoted,
        "decision": outcome.reason,
    }
    frame = context.spark.createDataFrame(pd.DataFrame([record]), schema=_MODEL_SCHEMA)
    champion_version = outcome.version.version if outcome.promoted or champion is None else champion.version
    metadata = {
        "mlflow/run_id": outcome.version.run_id,
        "mlflow/model_name": outcome.version.name,
        "mlflow/model_version": outcome.version.version,
        "ml/trained": True,
        "ml/champion_version": champion_version,
        "ml/promoted": outcome.promoted,
        "ml/decision": outcome.reason,
        **{f"ml/{key}": float(value) for key, value in metrics.items()},
    }
    if champion is not None:
        metadata["ml/previous_champion_roc_auc"] = outcome.champion_metrics["roc_auc"]
    return replace_as_of(context, frame, metadata)


_MODEL_SCHEMA = (
    "as_of_date DATE, holdout_feature_date DATE, model_name STRING, model_version BIGINT, "
    "mlflow_run_id STRING, roc_auc DOUBLE, pr_auc DOUBLE, brier DOUBLE, calibration_error DOUBLE, "
    "base_rate DOUBLE, training_rows BIGINT, holdout_rows BIGINT, previous_champion_version BIGINT, "
    "previous_champion_roc_auc DOUBLE, promoted BOOLEAN, decision STRING"
)
_SCORES_SCHEMA = (
    "as_of_date DATE, customer_id BIGINT, churn_probability DOUBLE, risk_band STRING, "
    "model_name STRING, model_version BIGINT"
)


def risk_band(probabilities: np.ndarray, bands: tuple[float, ...] = CHURN.risk_bands) -> np.ndarray:
    """low / medium / high by the model's band edges."""
    names = np.array(["low", "medium", "high"])
    return names[np.clip(np.digitize(probabilities, bands[1:-1]), 0, len(names) - 1)]


def build_churn_scores(context: UnitContext) -> UnitResult:
    """Every customer of ``gold.customer_features`` as of the run's date, scored by the champion."""
    as_of = context.request.as_of_date
    features = _as_of_rows(context, CUSTOMER_FEATURES, as_of).toPandas()
    if features.empty:
        raise ValueError(
            f"{CUSTOMER_FEATURES} holds no features as of {as_of}: materialise it for {as_of} first"
        )
    store = context.model_store()
    champion = store.champion(CHURN.name)
    if champion is None:  # nothing trained yet: the every_customer_scored check says so
        nothing = context.spark.createDataFrame([], schema=_SCORES_SCHEMA)
        reason = f"not scored: model {store.settings.model_name(CHURN.name)} has no champion yet"
        return replace_as_of(context, nothing, {"ml/scored": False, "ml/decision": reason})
    probabilities = predict(store.load(champion), features)
    scores = pd.DataFrame(
        {
            ml.AS_OF_DATE: as_of,
            "customer_id": features["customer_id"].astype("int64"),
            "churn_probability": probabilities.astype("float64"),
            "risk_band": risk_band(probabilities),
            "model_name": champion.name,
            "model_version": champion.version,
        }
    )
    frame = context.spark.createDataFrame(scores, schema=_SCORES_SCHEMA)
    return replace_as_of(
        context,
        frame,
        {
            "lakehouse/as_of_date": as_of.isoformat(),
            "ml/scored": True,
            "mlflow/model_name": champion.name,
            "mlflow/model_version": champion.version,
            "ml/high_risk_share": float((probabilities >= CHURN.high_risk).mean()),
            "ml/mean_churn_probability": float(probabilities.mean()),
        },
    )


# Checks of the scores -------------------------------------------------------------------------


def _every_customer_scored(context: UnitContext) -> CheckOutcome:
    """Every customer has a score; a warning, not an error, while no model has been trained."""
    as_of = context.request.as_of_date
    if context.model_store().champion(CHURN.name) is None:
        return CheckOutcome(
            "every_customer_scored",
            passed=False,
            severity=Severity.WARN,
            description=f"no champion model yet: nothing scored (see {CHURN_MODEL})",
        )
    expected = ml.customers_as_of(context.tables.read(SALES_CUSTOMERS_HISTORY), as_of).select("customer_id")
    scored = _as_of_rows(context, CHURN_SCORES, as_of).select("customer_id")
    missing = expected.join(scored, "customer_id", "left_anti")
    missing_count = missing.count()
    sample = [row[0] for row in missing.limit(5).collect()]
    return CheckOutcome(
        "every_customer_scored",
        passed=missing_count == 0,
        severity=Severity.ERROR,
        description=f"{missing_count} customers as of {as_of} have no score, e.g. {sample}"
        if missing_count
        else "",
        metadata={"customers": expected.count(), "scored": scored.count(), "missing": missing_count},
    )


def _high_risk_drift(context: UnitContext) -> CheckOutcome:
    """PSI of the risk bands' shares against the previous as-of date's scores."""
    as_of, limit = (
        context.request.as_of_date,
        context.thresholds.for_check(str(CHURN_SCORES), DRIFT_CHECK, CHURN.default_max_psi),
    )
    scores = context.tables.read(CHURN_SCORES)
    previous_date = scores.where(F.col(ml.AS_OF_DATE) < F.lit(as_of)).agg(F.max(ml.AS_OF_DATE)).first()[0]
    current = _as_of_rows(context, CHURN_SCORES, as_of).select("churn_probability").toPandas()
    current_values = current["churn_probability"].to_numpy()
    if not len(current_values):
        return CheckOutcome(DRIFT_CHECK, passed=True, severity=Severity.WARN, description="nothing scored")
    high_now = float((current_values >= CHURN.high_risk).mean())
    if previous_date is None:
        return CheckOutcome(
            DRIFT_CHECK,
            passed=True,
            severity=Severity.WARN,
            description=f"no scores before {as_of} to compare with",
            metadata={"high_risk_share": high_now, "max_psi": limit},
        )
    previous = _as_of_rows(context, CHURN_SCORES, previous_date).select("churn_probability").toPandas()
    previous_values = previous["churn_probability"].to_numpy()
    psi = population_stability_index(previous_values, current_values, np.array(CHURN.risk_bands))
    high_before = float((previous_values >= CHURN.high_risk).mean())
    return CheckOutcome(
        DRIFT_CHECK,
        passed=psi <= limit,
        severity=Severity.WARN,
        description=f"risk bands' PSI against {previous_date} is {psi:.3f} (limit {limit}); high-risk "
        f"share {high_before:.1%} -> {high_now:.1%}",
        metadata={
            "psi": psi,
            "max_psi": limit,
            "previous_as_of_date": previous_date.isoformat(),
            "high_risk_share": high_now,
            "previous_high_risk_share": high_before,
        },
    )


EVERY_CUSTOMER_SCORED = TableCheck(
    CheckSpec(
        "every_customer_scored", "Every customer existing at the end of the as-of date has a score for it."
    ),
    _every_customer_scored,
    needs=(SALES_CUSTOMERS_HISTORY,),
)
HIGH_RISK_DRIFT = table_check(
    DRIFT_CHECK,
    "The risk bands' shares (high-risk share included) have not drifted from the previous as-of date's "
    "scores: PSI at most the threshold (quality/thresholds.yaml, default 0.25).",
    _high_risk_drift,
    Severity.WARN,
)

_FEATURE_DOCS = {
    "customer_id": "Sales database customer id (customers existing at the end of the as-of date).",
    "as_of_date": "The features are as of the end of this day (UTC): nothing later is used.",
    "recency_days": "Days from the last order to the as-of date (from becoming a customer, if none).",
    "frequency": "Orders not cancelled (as known on the as-of date).",
    "monetary_usd": ROUNDED.doc("Value of those orders in USD at the reference rates."),
    "tenure_days": "Days since the customer was created.",
    "segment": "active (last order <= 30 days ago), recent (<= 90) or inactive.",
    "cancel_share": "Cancelled orders / orders placed (0 without orders).",
    "orders_last_30_days": "Orders placed in the 30 days ending on the as-of date, cancelled ones included.",
    "orders_last_90_days": "Orders placed in the 90 days ending on the as-of date, cancelled ones included.",
    "country": "The customer's country on the as-of date.",
}
_ORDERS = ((SALES_ORDERS, "order_ts"),)
_FEATURE_LINEAGE = {
    "customer_id": ((SALES_CUSTOMERS_HISTORY, "customer_id"),),
    "recency_days": (*_ORDERS, (SALES_CUSTOMERS_HISTORY, "created_at")),
    "frequency": (*_ORDERS, (SALES_ORDERS, "status")),
    "monetary_usd": (
        (SALES_ORDER_ITEMS, "quantity"),
        (SALES_ORDER_ITEMS, "unit_price"),
        (SALES_ORDERS, "currency"),
        (SALES_ORDERS, "status"),
    ),
    "tenure_days": ((SALES_CUSTOMERS_HISTORY, "created_at"),),
    "segment": _ORDERS,
    "cancel_share": ((SALES_ORDERS, "status"), (SALES_ORDERS, "dms_commit_ts")),
    "orders_last_30_days": _ORDERS,
    "orders_last_90_days": _ORDERS,
    "country": ((SALES_CUSTOMERS_HISTORY, "country"),),
}
_SALES_INPUTS = (SALES_CUSTOMERS_HISTORY, SALES_ORDERS, SALES_ORDER_ITEMS)
_SHARE = Expectation(
    "cancel_share_is_a_share", "cancel_share BETWEEN 0 AND 1", Action.FAIL, "a share in [0, 1]"
)

DOMAIN = Domain(
    name="ml",
    description="Machine learning on gold: customer features as of a date, a churn model tracked and "
    "registered with MLflow, and churn scores of every customer by the champion model.",
    owners=("team:data-science",),
    tables=(
        Table(
            name=CUSTOMER_FEATURES,
            serving=Serving(),
            description="One row per customer existing at the end of the run's as-of date: recency, "
            "frequency, monetary value (USD), tenure, segment, cancel share and orders in the last "
            "30 / 90 days, from nothing later than that date.",
            build=build_customer_features,
            inputs=_SALES_INPUTS,
            uses_as_of_date=True,
            expectations=(
                _SHARE,
                Expectation("recency_not_negative", "recency_days >= 0", Action.FAIL, "0 days or more"),
            ),
            primary_key=("customer_id",),
            column_docs=_FEATURE_DOCS,
            column_lineage=_FEATURE_LINEAGE,
        ),
        Table(
            name=CHURN_TRAINING_SET,
            description=f"Customer features as of past feature dates with their label, churned (no "
            f"order in the {CHURN.horizon_days} days after): split = holdout for the run's as-of date "
            f"minus {CHURN.horizon_days} days, train for earlier dates whose label windows end before "
            "the holdout's feature date.",
            build=build_churn_training_set,
            inputs=_SALES_INPUTS,
            uses_as_of_date=True,
            expectations=(_SHARE,),
            primary_key=(ml.FEATURE_DATE, "customer_id"),
            checks=(
                table_check(
                    ENOUGH_HISTORY,
                    "The orders go back far enough for a training feature date (else the set is empty "
                    "and no model is trained).",
                    _enough_history,
                    Severity.WARN,
                ),
            ),
            column_docs={
                **{k: v for k, v in _FEATURE_DOCS.items() if k != "as_of_date"},
                ml.FEATURE_DATE: "The features are as of the end of this day.",
                ml.LABEL: f"No order placed in the {CHURN.horizon_days} days after the feature date.",
                "split": "train or holdout (the latest feature date).",
            },
        ),
        Table(
            name=CHURN_MODEL,
            description="The churn model's trainings, one row per as-of date: the MLflow run and "
            "registered version, holdout metrics (ROC AUC, PR AUC, Brier score, calibration error), "
            "and whether it was promoted to the champion alias (only if it beat the champion on the "
            "same holdout).",
            build=build_churn_model,
            inputs=(CHURN_TRAINING_SET, SALES_ORDERS),
            uses_as_of_date=True,
            expectations=(
                Expectation(
                    "metrics_in_range",
                    "roc_auc BETWEEN 0 AND 1 AND pr_auc BETWEEN 0 AND 1 AND brier BETWEEN 0 AND 1",
                    Action.FAIL,
                    "metrics in [0, 1]",
                ),
                Expectation(
                    "better_than_chance", "roc_auc > 0.5", Action.WARN, "a holdout ROC AUC above 0.5"
                ),
            ),
            primary_key=(ml.AS_OF_DATE,),
            column_docs={
                "as_of_date": "The training's as-of date: its holdout labels end on it.",
                "model_version": "The version registered by this training.",
                "mlflow_run_id": "The MLflow run that logged it.",
                "previous_champion_roc_auc": "The previous champion's ROC AUC on this training's holdout.",
                "promoted": "True when this version became the champion.",
                "decision": "Why it was, or was not, promoted.",
            },
        ),
        Table(
            name=CHURN_SCORES,
            serving=Serving(),
            description="Every customer's churn probability as of the run's date, by the champion model "
            "(its version in every row); a rerun for a date replaces that date's scores.",
            build=build_churn_scores,
            inputs=(CUSTOMER_FEATURES, CHURN_MODEL),
            uses_as_of_date=True,
            expectations=(
                Expectation(
                    "score_is_a_probability",
                    "churn_probability BETWEEN 0 AND 1",
                    Action.FAIL,
                    "a probability in [0, 1]",
                ),
            ),
            primary_key=(ml.AS_OF_DATE, "customer_id"),
            checks=(EVERY_CUSTOMER_SCORED, HIGH_RISK_DRIFT),
            column_docs={
                "as_of_date": "The features' as-of date.",
                "churn_probability": f"Probability of no order in the next {CHURN.horizon_days} days.",
                "risk_band": "low (< 0.2), medium (< 0.5) or high.",
                "model_name": "The registered model that scored.",
                "model_version": "Its version (the champion when scored).",
            },
            column_lineage={
                "customer_id": ((CUSTOMER_FEATURES, "customer_id"),),
                "churn_probability": tuple((CUSTOMER_FEATURES, f) for f in CHURN.spec.features),
            },
        ),
    ),
)
