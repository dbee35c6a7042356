"""The builds of the ml domain's tables: features, the training set, the model, the scores."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.domains.sales.tables import SALES_CUSTOMERS_HISTORY, SALES_ORDER_ITEMS, SALES_ORDERS
from lakehouse_dagster.ml.training import predict, train_and_register
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.writes import overwrite_table

from . import features as ml
from .model import (
    CHURN,
    CHURN_TRAINING_SET,
    CUSTOMER_FEATURES,
    ENOUGH_HISTORY,
    as_of_rows,
    replace_as_of,
)


def build_customer_features(context: UnitContext) -> UnitResult:
    tables, as_of = context.tables, context.request.as_of_date
    frame = ml.customer_features(
        tables.read(SALES_CUSTOMERS_HISTORY), tables.read(SALES_ORDERS), tables.read(SALES_ORDER_ITEMS), as_of
    )
    return overwrite_table(context, frame, {"lakehouse/as_of_date": as_of.isoformat()})


def order_dates(orders: DataFrame) -> tuple[date, date]:
    """The first and last order dates; ``NotEnoughHistoryError`` without any order (yet)."""
    first, last = orders.agg(F.min(F.to_date("order_ts")), F.max(F.to_date("order_ts"))).first()
    if first is None:
        raise ml.NotEnoughHistoryError(f"not enough history: {SALES_ORDERS} has no orders yet")
    return first, last


def training_as_of(context: UnitContext, orders: DataFrame) -> date:
    """The run's as-of date, or the last order date if the data ends before it: labels are only as
    complete as the data (a run long after the last order would call every customer churned)."""
    return min(context.request.as_of_date, order_dates(orders)[1])


def training_dates_of(context: UnitContext) -> tuple[date, tuple[date, list[date]]]:
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
        as_of, (holdout, training) = training_dates_of(context)
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


def build_churn_model(context: UnitContext) -> UnitResult:
    """Train on the training set's ``train`` rows, evaluate on its holdout, log and register a
    version, promote it only if it beats the champion on the same holdout; one row per as-of date."""
    rows = context.tables.read(CHURN_TRAINING_SET).toPandas()
    if rows.empty:
        nothing = context.spark.createDataFrame([], schema=_MODEL_SCHEMA)
        reason = f"not trained: {CHURN_TRAINING_SET} is empty (see its {ENOUGH_HISTORY} check)"
        return replace_as_of(context, nothing, {"ml/trained": False, "ml/decision": reason})
    as_of = training_as_of(context, context.tables.read(SALES_ORDERS))
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
    features = as_of_rows(context, CUSTOMER_FEATURES, as_of).toPandas()
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
