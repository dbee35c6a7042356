"""The churn model's declaration, its tables' names, and the writes of one as-of date."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pyspark.sql import DataFrame

from lakehouse_dagster.lake.delta import DateWindow
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.ml.training import ClassifierSpec
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult

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


def day_window(as_of: date) -> DateWindow:
    return DateWindow(ml.AS_OF_DATE, as_of, as_of + timedelta(days=1))


def replace_as_of(context: UnitContext, frame: DataFrame, metadata: dict[str, Any]) -> UnitResult:
    """Expectations, then replace the rows of the run's as-of date in one commit: a rerun for the
    same date replaces its rows; other dates stay."""
    evaluation = context.evaluate(frame)
    context.tables.replace_window(context.name, evaluation.kept, day_window(context.request.as_of_date))
    quality = context.quarantine_and_report(evaluation)
    return context.result({**metadata, **quality.metadata}, quality.outcomes)


def as_of_rows(context: UnitContext, name: TableName, as_of: date) -> DataFrame:
    if not context.tables.exists(name):
        raise ValueError(f"{context.name} needs {name}, which does not exist yet: materialise it first")
    return context.tables.read(name).where(day_window(as_of).condition())
