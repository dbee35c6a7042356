"""The checks of the ml domain's tables: enough history to train, every customer scored, score drift."""

from __future__ import annotations

import numpy as np
from pyspark.sql import functions as F

from lakehouse_dagster.domains.sales.tables import SALES_CUSTOMERS_HISTORY
from lakehouse_dagster.ml.drift import population_stability_index
from lakehouse_dagster.quality.checks import CheckOutcome, CheckSpec, Severity
from lakehouse_dagster.quality.table_checks import TableCheck, table_check
from lakehouse_dagster.units.context import UnitContext

from . import features as ml
from .builds import training_dates_of
from .model import CHURN, CHURN_MODEL, CHURN_SCORES, DRIFT_CHECK, ENOUGH_HISTORY, as_of_rows


def _enough_history(context: UnitContext) -> CheckOutcome:
    try:
        _, (holdout, training) = training_dates_of(context)
    except ml.NotEnoughHistoryError as error:
        return CheckOutcome(ENOUGH_HISTORY, passed=False, severity=Severity.WARN, description=str(error))
    return CheckOutcome(
        ENOUGH_HISTORY,
        passed=True,
        severity=Severity.WARN,
        metadata={"holdout_feature_date": holdout.isoformat(), "training_feature_dates": len(training)},
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
    scored = as_of_rows(context, CHURN_SCORES, as_of).select("customer_id")
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
    current = as_of_rows(context, CHURN_SCORES, as_of).select("churn_probability").toPandas()
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
    previous = as_of_rows(context, CHURN_SCORES, previous_date).select("churn_probability").toPandas()
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


ENOUGH_HISTORY_CHECK = table_check(
    ENOUGH_HISTORY,
    "The orders go back far enough for a training feature date (else the set is empty and no model "
    "is trained).",
    _enough_history,
    Severity.WARN,
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
