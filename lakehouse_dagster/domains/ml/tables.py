"""The ml domain: customer features from the sales tables, a churn model tracked and registered
with MLflow, and churn scores of every customer by the champion model.

    silver.sales_* -> gold.customer_features (as of the run's date) ----> gold.customer_churn_scores
                   -> ml.churn_training_set -> ml.churn_model (champion) ----^

The gold tables are served to the warehouse like every gold table (BI sees each customer's risk).

Every table is a unit like any other (it runs in process, in a subprocess or on a Databricks
cluster); the units that train and score reach MLflow through the unit's model store.
"""

from __future__ import annotations

from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.domains.sales.money import ROUNDED
from lakehouse_dagster.domains.sales.tables import SALES_CUSTOMERS_HISTORY, SALES_ORDER_ITEMS, SALES_ORDERS
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.serving.spec import Serving

from . import features as ml
from .builds import build_churn_model, build_churn_scores, build_churn_training_set, build_customer_features
from .checks import ENOUGH_HISTORY_CHECK, EVERY_CUSTOMER_SCORED, HIGH_RISK_DRIFT
from .model import CHURN, CHURN_MODEL, CHURN_SCORES, CHURN_TRAINING_SET, CUSTOMER_FEATURES

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
    "as_of_date": (),  # the run's date, no column's
}
_SALES_INPUTS = (SALES_CUSTOMERS_HISTORY, SALES_ORDERS, SALES_ORDER_ITEMS)
#: The score and its band come from the champion's features.
_SCORED_FROM = tuple((CUSTOMER_FEATURES, feature) for feature in CHURN.spec.features)
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
            checks=(ENOUGH_HISTORY_CHECK,),
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
                "holdout_feature_date": f"The holdout's feature date: the as-of date minus "
                f"{CHURN.horizon_days} days.",
                "model_name": "The registered model (Unity Catalog in production).",
                "model_version": "The version registered by this training.",
                "mlflow_run_id": "The MLflow run that logged it.",
                "roc_auc": "ROC AUC on the holdout.",
                "pr_auc": "PR AUC (average precision) on the holdout.",
                "brier": "Brier score on the holdout (mean squared error of the probabilities).",
                "calibration_error": "Expected calibration error on the holdout (ten equal-width bins).",
                "base_rate": "Share of the holdout's customers who churned.",
                "training_rows": "Rows trained on (the train split).",
                "holdout_rows": "Rows of the holdout.",
                "previous_champion_version": "The champion's version before this training (null if none).",
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
                "customer_id": _FEATURE_DOCS["customer_id"],
                "as_of_date": "The features' as-of date.",
                "churn_probability": f"Probability of no order in the next {CHURN.horizon_days} days.",
                "risk_band": "low (< 0.2), medium (< 0.5) or high.",
                "model_name": "The registered model that scored.",
                "model_version": "Its version (the champion when scored).",
            },
            column_lineage={
                "customer_id": ((CUSTOMER_FEATURES, "customer_id"),),
                "as_of_date": ((CUSTOMER_FEATURES, "as_of_date"),),
                "churn_probability": _SCORED_FROM,
                "risk_band": _SCORED_FROM,
                "model_name": ((CHURN_MODEL, "model_name"),),
                "model_version": ((CHURN_MODEL, "model_version"),),
            },
        ),
    ),
)
