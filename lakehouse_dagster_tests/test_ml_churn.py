"""The churn loop on the retail simulator's data: point-in-time features, training with MLflow,
the champion alias, scoring.

The sales silver tables are built straight from the simulator's truth (its final state and
customer history), not by ingesting its files (other tests prove that path gives the truth), so
the whole module stays fast. The simulator also says which customers churned: an oracle the
model never sees.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from lakehouse_dagster.domains.ml import features as ml
from lakehouse_dagster.domains.ml.tables import (
    CHURN,
    CHURN_MODEL,
    CHURN_SCORES,
    CHURN_TRAINING_SET,
    CUSTOMER_FEATURES,
)
from lakehouse_dagster.domains.sales.tables import SALES_CUSTOMERS_HISTORY, SALES_ORDER_ITEMS, SALES_ORDERS
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.ml.drift import population_stability_index
from lakehouse_dagster.ml.models import ModelStore
from lakehouse_dagster.ml.settings import MlflowSettings
from lakehouse_dagster.ml.training import ClassifierSpec, train_and_register
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.retail import RetailSimulation, simulate_retail
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster.units.run import run_unit

END = date(2026, 11, 26)
AS_OF = END - timedelta(days=1)  # the last whole day of the data
#: The least holdout ROC AUC the model must reach on the simulator's data.
MIN_ROC_AUC = 0.70


@pytest.fixture(scope="module")
def simulation() -> RetailSimulation:
    return simulate_retail(days=130, seed=5, end_date=END, customers=900, orders_per_day=140)


def _silver(spark: SparkSession, simulation: RetailSimulation) -> dict:
    """The sales silver tables the features read, typed as silver types them."""
    truth = simulation.truth
    orders = spark.createDataFrame(truth.tables["orders"].astype(str)).selectExpr(
        "CAST(order_id AS BIGINT) AS order_id",
        "CAST(customer_id AS BIGINT) AS customer_id",
        "CAST(order_ts AS TIMESTAMP) AS order_ts",
        "status",
        "currency",
        # updated_at is the commit time of the row's last change, to the second.
        "CAST(updated_at AS TIMESTAMP) AS dms_commit_ts",
    )
    items = spark.createDataFrame(truth.tables["order_items"].astype(str)).selectExpr(
        "CAST(order_id AS BIGINT) AS order_id",
        "CAST(line_number AS INT) AS line_number",
        "CAST(product_id AS BIGINT) AS product_id",
        "CAST(quantity AS INT) AS quantity",
        "CAST(unit_price AS DECIMAL(12,2)) AS unit_price",
    )
    history = truth.customers_history[
        ["customer_id", "country", "created_at", "__START_AT", "__END_AT"]
    ].astype(object)
    history = history.where(history.notna(), None)
    customers = spark.createDataFrame(history.astype(str).replace("None", None)).selectExpr(
        "CAST(customer_id AS BIGINT) AS customer_id",
        "country",
        "CAST(created_at AS TIMESTAMP) AS created_at",
        "named_struct('dms_commit_ts', CAST(__START_AT AS TIMESTAMP)) AS __START_AT",
        "CASE WHEN __END_AT IS NULL THEN NULL "
        "ELSE named_struct('dms_commit_ts', CAST(__END_AT AS TIMESTAMP)) END AS __END_AT",
    )
    return {SALES_ORDERS: orders, SALES_ORDER_ITEMS: items, SALES_CUSTOMERS_HISTORY: customers}


@pytest.fixture(scope="module")
def lake(spark: SparkSession, simulation: RetailSimulation, tmp_path_factory) -> DeltaTables:
    tables = DeltaTables(spark, LakeLayout.local(str(tmp_path_factory.mktemp("ml") / "lake")))
    for name, frame in _silver(spark, simulation).items():
        tables.overwrite(name, frame)
    return tables


@pytest.fixture(scope="module")
def mlflow_settings(tmp_path_factory) -> MlflowSettings:
    return MlflowSettings.local(tmp_path_factory.mktemp("mlflow"))


def run(tables: DeltaTables, models: MlflowSettings, table, as_of: date = AS_OF) -> UnitResult:
    result = run_unit(
        UnitRequest(table=str(table), as_of_date=as_of, run_id=f"test-{table}-{as_of}"),
        REGISTRY.table(table),
        tables,
        Thresholds.load(),
        logging.getLogger("test_ml_churn"),
        models,
    )
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def trained(lake: DeltaTables, mlflow_settings: MlflowSettings) -> UnitResult:
    run(lake, mlflow_settings, CHURN_TRAINING_SET)
    return run(lake, mlflow_settings, CHURN_MODEL)


def _pandas(frame: DataFrame, key: str = "customer_id") -> pd.DataFrame:
    return frame.toPandas().sort_values(key, ignore_index=True)


# Point in time --------------------------------------------------------------------------------


def _changed_after(spark: SparkSession, silver: dict, moment: datetime, feature_date: date) -> dict:
    """The silver tables with changes committed at ``moment``: 40 new orders, 40 orders placed on or
    before ``feature_date`` cancelled, 20 new customers, 20 customers moved to another country."""
    orders, items, customers = (
        silver[SALES_ORDERS],
        silver[SALES_ORDER_ITEMS],
        silver[SALES_CUSTOMERS_HISTORY],
    )
    at = F.lit(moment)
    placed = orders.where(F.col("order_ts") < F.lit(feature_date + timedelta(days=1)))
    to_cancel = [r[0] for r in placed.where("status = 'delivered'").orderBy("order_id").limit(40).collect()]
    cancel = F.col("order_id").isin(to_cancel)
    orders = orders.select(
        "order_id",
        "customer_id",
        "order_ts",
        F.when(cancel, F.lit("cancelled")).otherwise(F.col("status")).alias("status"),
        "currency",
        F.when(cancel, at).otherwise(F.col("dms_commit_ts")).alias("dms_commit_ts"),
    )
    buyers = [
        r[0] for r in customers.select("customer_id").distinct().orderBy("customer_id").limit(40).collect()
    ]
    last_order = orders.agg(F.max("order_id")).first()[0]
    new_orders = spark.createDataFrame(
        pd.DataFrame({"order_id": range(last_order + 1, last_order + 41), "customer_id": buyers})
    )
    orders = orders.unionByName(
        new_orders.select(
            "order_id",
            "customer_id",
            at.alias("order_ts"),
            F.lit("placed").alias("status"),
            F.lit("USD").alias("currency"),
            at.alias("dms_commit_ts"),
        )
    )
    items = items.unionByName(
        new_orders.select(
            "order_id",
            F.lit(1).alias("line_number"),
            F.lit(1).cast("bigint").alias("product_id"),
            F.lit(2).alias("quantity"),
            F.lit(9.99).cast("decimal(12,2)").alias("unit_price"),
        )
    )
    last_customer = customers.agg(F.max("customer_id")).first()[0]
    existing = F.col("__END_AT").isNull() & (F.col("__START_AT.dms_commit_ts") < F.lit(feature_date))
    movers = [
        r[0]
        for r in customers.where(existing).select("customer_id").orderBy("customer_id").limit(20).collect()
    ]
    move = F.col("customer_id").isin(movers) & F.col("__END_AT").isNull()
    history = customers.select(
        "customer_id",
        "country",
        "created_at",
        "__START_AT",
        F.when(move, F.struct(at.alias("dms_commit_ts"))).otherwise(F.col("__END_AT")).alias("__END_AT"),
    )
    arrivals = spark.createDataFrame(
        pd.DataFrame({"customer_id": range(last_customer + 1, last_customer + 21)})
    )
    moved = customers.where(move).select("customer_id", F.lit("NA").alias("country"), "created_at")
    history = history.unionByName(
        arrivals.select("customer_id", F.lit("US").alias("country"), at.alias("created_at"))
        .unionByName(moved)
        .select(
            "customer_id",
            "country",
            "created_at",
            F.struct(at.alias("dms_commit_ts")).alias("__START_AT"),
            F.lit(None).cast(customers.schema["__END_AT"].dataType).alias("__END_AT"),
        )
    )
    return {SALES_ORDERS: orders, SALES_ORDER_ITEMS: items, SALES_CUSTOMERS_HISTORY: history}


def _features(silver: dict, as_of: date) -> pd.DataFrame:
    return _pandas(
        ml.customer_features(
            silver[SALES_CUSTOMERS_HISTORY], silver[SALES_ORDERS], silver[SALES_ORDER_ITEMS], as_of
        )
    )


@pytest.fixture(params=["UTC", "America/Los_Angeles", "Asia/Tokyo"])
def process_time_zone(request, monkeypatch) -> Iterator[str]:
    """The Python process's local time zone (PySpark reads naive datetimes in it)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def test_no_feature_uses_data_after_the_feature_date(
    spark: SparkSession, simulation: RetailSimulation, process_time_zone: str
) -> None:
    """Orders, cancellations, customers and moves committed after the feature date (UTC) leave the
    features as of it unchanged; the same changes committed on that day change them (the test can
    fail), whatever the time zone of the process."""
    silver = _silver(spark, simulation)
    feature_date = AS_OF - timedelta(days=CHURN.horizon_days)
    before = _features(silver, feature_date)
    the_day_after = datetime.combine(feature_date + timedelta(days=1), datetime.min.time(), UTC)
    later = _features(_changed_after(spark, silver, the_day_after, feature_date), feature_date)
    pd.testing.assert_frame_equal(later, before)

    on_the_day = _features(
        _changed_after(spark, silver, the_day_after - timedelta(seconds=1), feature_date), feature_date
    )
    assert len(on_the_day) == len(before) + 20  # the new customers
    same = on_the_day.merge(before, on="customer_id", suffixes=("", "_before"))
    for column in ("frequency", "cancel_share", "recency_days", "orders_last_30_days", "country"):
        assert (same[column] != same[f"{column}_before"]).any(), column


def test_features_match_an_independent_computation(spark: SparkSession, simulation: RetailSimulation) -> None:
    """Frequency, cancel share, recency and the 30-day count of a sample, recomputed with pandas from
    the simulator's truth."""
    feature_date = AS_OF - timedelta(days=30)
    features = _features(_silver(spark, simulation), feature_date).set_index("customer_id")
    orders = simulation.truth.tables["orders"].astype({"customer_id": int})
    orders["order_ts"] = pd.to_datetime(orders["order_ts"])
    orders["committed"] = pd.to_datetime(orders["updated_at"])
    end = pd.Timestamp(feature_date + timedelta(days=1))
    known = orders[orders["order_ts"] < end]
    cancelled = (known["status"] == "cancelled") & (known["committed"] < end)
    per_customer = known.assign(cancelled=cancelled).groupby("customer_id")
    expected = pd.DataFrame(
        {
            "frequency": per_customer.size() - per_customer["cancelled"].sum(),
            "cancel_share": per_customer["cancelled"].mean(),
            "recency_days": (
                pd.Timestamp(feature_date) - per_customer["order_ts"].max().dt.normalize()
            ).dt.days,
            "orders_last_30_days": per_customer["order_ts"].apply(
                lambda ts: int((ts.dt.normalize() > pd.Timestamp(feature_date - timedelta(days=30))).sum())
            ),
        }
    )
    sample = expected.index.intersection(features.index)[:300]
    assert len(sample) == 300
    pd.testing.assert_frame_equal(
        features.loc[sample, list(expected.columns)].astype(float), expected.loc[sample].astype(float)
    )


# Training and the registry --------------------------------------------------------------------


def test_training_predicts_churn_and_logs_it(trained: UnitResult, mlflow_settings: MlflowSettings) -> None:
    metadata = trained.metadata
    assert metadata["ml/roc_auc"] > MIN_ROC_AUC
    assert (
        0 < metadata["ml/brier"] < metadata["ml/base_rate"] * (1 - metadata["ml/base_rate"])
    )  # beats the base rate
    assert metadata["ml/promoted"] is True  # the first version
    champion = ModelStore(mlflow_settings).champion(CHURN.name)
    assert champion is not None
    assert (champion.version, champion.run_id) == (
        metadata["mlflow/model_version"],
        metadata["mlflow/run_id"],
    )
    import mlflow

    client = mlflow.MlflowClient(mlflow_settings.tracking_uri, mlflow_settings.registry_uri)
    run = client.get_run(champion.run_id)
    assert run.data.metrics["roc_auc"] == pytest.approx(metadata["ml/roc_auc"])
    assert {"pr_auc", "brier", "calibration_error"} <= run.data.metrics.keys()
    assert run.data.params["numeric_features"] == ",".join(ml.NUMERIC_FEATURES)
    model_info = mlflow.models.get_model_info(champion.uri)
    assert [c["name"] for c in model_info.signature.inputs.to_dict()] == list(CHURN.spec.features)


def test_the_training_split_is_by_time(lake: DeltaTables, trained: UnitResult) -> None:
    rows = lake.read(CHURN_TRAINING_SET).toPandas()
    holdout = rows[rows["split"] == "holdout"][ml.FEATURE_DATE].unique()
    training = rows[rows["split"] == "train"][ml.FEATURE_DATE].unique()
    assert list(holdout) == [AS_OF - timedelta(days=CHURN.horizon_days)]
    # Every training label window ends on or before the holdout's feature date.
    assert max(training) + timedelta(days=CHURN.horizon_days) <= holdout[0]


def test_a_worse_model_does_not_replace_the_champion_and_a_better_one_does(
    lake: DeltaTables, trained: UnitResult, tmp_path: Path
) -> None:
    store = ModelStore(MlflowSettings.local(tmp_path / "registry"))
    rows = lake.read(CHURN_TRAINING_SET).toPandas()
    weak = ClassifierSpec(ml.LABEL, ("tenure_days",))  # tenure says next to nothing about churn here

    first = train_and_register(store, "churn", weak, rows, run_name="weak", tags={})
    better = train_and_register(store, "churn", CHURN.spec, rows, run_name="full", tags={})
    worse = train_and_register(store, "churn", weak, rows, run_name="weak again", tags={})

    assert first.promoted and better.promoted and not worse.promoted
    assert better.metrics["roc_auc"] > first.metrics["roc_auc"]
    assert better.champion_metrics["roc_auc"] == pytest.approx(first.metrics["roc_auc"])  # the same holdout
    assert worse.previous_champion == better.version
    assert store.champion("churn") == better.version
    assert f"kept champion version {better.version.version}" in worse.reason


# Scoring --------------------------------------------------------------------------------------


def test_scores_use_the_champion_and_a_rerun_gives_the_same_scores(
    lake: DeltaTables, mlflow_settings: MlflowSettings, trained: UnitResult, simulation: RetailSimulation
) -> None:
    run(lake, mlflow_settings, CUSTOMER_FEATURES)
    first = run(lake, mlflow_settings, CHURN_SCORES)
    scores = _pandas(lake.read(CHURN_SCORES).where(f"as_of_date = DATE'{AS_OF}'"))
    champion = ModelStore(mlflow_settings).champion(CHURN.name)
    assert set(scores["model_version"]) == {champion.version}
    assert scores["churn_probability"].between(0, 1).all()
    checks = {c.name: c for c in first.checks}
    assert checks["every_customer_scored"].passed and checks["score_is_a_probability"].passed
    assert checks["every_customer_scored"].metadata["customers"] == len(scores)

    again = run(lake, mlflow_settings, CHURN_SCORES)
    pd.testing.assert_frame_equal(
        _pandas(lake.read(CHURN_SCORES).where(f"as_of_date = DATE'{AS_OF}'")), scores
    )
    assert again.metadata["lakehouse/delta_version"] > first.metadata["lakehouse/delta_version"]

    # The simulator's truth, which the model never saw: customers who stopped ordering score higher.
    churned = set(simulation.truth.churned["customer_id"])
    truth = scores["customer_id"].isin(churned)
    assert roc_auc_score(truth, scores["churn_probability"]) > MIN_ROC_AUC


def test_scores_follow_the_champion_alias(
    lake: DeltaTables, mlflow_settings: MlflowSettings, trained: UnitResult
) -> None:
    run(lake, mlflow_settings, CUSTOMER_FEATURES)
    store = ModelStore(mlflow_settings)
    before = store.champion(CHURN.name)
    rows = lake.read(CHURN_TRAINING_SET).toPandas()
    other = train_and_register(
        store, CHURN.name, ClassifierSpec(ml.LABEL, ("tenure_days",)), rows, run_name="other", tags={}
    )
    assert not other.promoted
    store.promote(other.version)  # by hand, as an operator might
    try:
        run(lake, mlflow_settings, CHURN_SCORES)
        versions = set(
            lake.read(CHURN_SCORES).where(f"as_of_date = DATE'{AS_OF}'").toPandas()["model_version"]
        )
        assert versions == {other.version.version}
    finally:
        store.promote(before)


def test_drift_is_checked_against_the_previous_scoring_date(
    lake: DeltaTables, mlflow_settings: MlflowSettings, trained: UnitResult
) -> None:
    earlier = AS_OF - timedelta(days=14)
    run(lake, mlflow_settings, CUSTOMER_FEATURES, earlier)
    first = run(lake, mlflow_settings, CHURN_SCORES, earlier)
    run(lake, mlflow_settings, CUSTOMER_FEATURES)
    second = run(lake, mlflow_settings, CHURN_SCORES)
    drift_first = next(c for c in first.checks if c.name == "high_risk_drift")
    drift = next(c for c in second.checks if c.name == "high_risk_drift")
    scores = lake.read(CHURN_SCORES).toPandas()
    by_date = {d: s["churn_probability"].to_numpy() for d, s in scores.groupby("as_of_date")}
    expected = population_stability_index(by_date[earlier], by_date[AS_OF], np.array(CHURN.risk_bands))
    assert drift.metadata["previous_as_of_date"] == earlier.isoformat()
    assert drift.metadata["psi"] == pytest.approx(expected)
    assert drift.passed == (expected <= CHURN.default_max_psi)
    assert "no scores before" in drift_first.description


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(3)
    low = rng.beta(2, 8, 5000)
    assert population_stability_index(low, low) == 0
    shares_before, shares_after = np.array([0.7, 0.2, 0.1]), np.array([0.3, 0.3, 0.4])
    expected = float(np.sum((shares_after - shares_before) * np.log(shares_after / shares_before)))
    before = np.repeat([0.1, 0.3, 0.7], (shares_before * 1000).astype(int))
    after = np.repeat([0.1, 0.3, 0.7], (shares_after * 1000).astype(int))
    assert population_stability_index(before, after, np.array(CHURN.risk_bands)) == pytest.approx(expected)
    assert expected > CHURN.default_max_psi


@pytest.mark.parametrize("orders", ["20 days", "none yet"])
def test_too_little_history_trains_nothing_and_says_so(
    spark: SparkSession, tmp_path: Path, orders: str
) -> None:
    """Before the orders go back two horizons (or before the first order), the chain writes nothing,
    and its warnings say why, without failing the run."""
    short = simulate_retail(days=20, seed=2, end_date=END, customers=200, orders_per_day=30)
    tables = DeltaTables(spark, LakeLayout.local(str(tmp_path / "lake")))
    for name, frame in _silver(spark, short).items():
        no_orders = orders == "none yet" and name in (SALES_ORDERS, SALES_ORDER_ITEMS)
        tables.overwrite(name, frame.limit(0) if no_orders else frame)
    models = MlflowSettings.local(tmp_path / "mlflow")
    training_set = run(tables, models, CHURN_TRAINING_SET)
    model = run(tables, models, CHURN_MODEL)
    run(tables, models, CUSTOMER_FEATURES)
    scores = run(tables, models, CHURN_SCORES)

    assert tables.read(CHURN_TRAINING_SET).count() == 0
    (history,) = [c for c in training_set.checks if c.name == "enough_history"]
    assert (
        not history.passed
        and history.severity.value == "WARN"
        and "not enough history" in history.description
    )
    assert model.metadata["ml/trained"] is False and tables.read(CHURN_MODEL).count() == 0
    assert ModelStore(models).champion(CHURN.name) is None
    assert scores.metadata["ml/scored"] is False and tables.read(CHURN_SCORES).count() == 0
    (scored,) = [c for c in scores.checks if c.name == "every_customer_scored"]
    assert not scored.passed and scored.severity.value == "WARN" and "no champion" in scored.description


def test_the_deployment_chooses_the_mlflow_store() -> None:
    from lakehouse_dagster.deployment import LakehouseSettings
    from lakehouse_dagster.ml.resource import DatabricksMlflow, LocalMlflow, mlflow_resource

    local = LakehouseSettings.from_env({}).mlflow
    assert local.tracking_uri == local.registry_uri == f"sqlite:///{Path('.mlflow').resolve() / 'mlflow.db'}"
    assert isinstance(mlflow_resource(local), LocalMlflow) and mlflow_resource(local).settings() == local
    test = LakehouseSettings.from_env({"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": "/tmp/lake"}).mlflow
    assert test.local_folder == Path("/tmp/lake/_mlflow")

    prod = LakehouseSettings.from_env(
        {"LAKEHOUSE_MLFLOW_TRACKING_URI": "databricks", "LAKEHOUSE_CATALOG": "acme"}
    ).mlflow
    assert (prod.tracking_uri, prod.registry_uri) == ("databricks", "databricks-uc")
    assert prod.model_name(CHURN.name) == "acme.ml.churn_model"  # Unity Catalog: catalog.schema.model
    resource = mlflow_resource(prod)
    assert isinstance(resource, DatabricksMlflow) and resource.settings() == prod
    without_catalog = LakehouseSettings.from_env({"LAKEHOUSE_MLFLOW_TRACKING_URI": "databricks"}).mlflow
    assert (without_catalog.registry_uri, without_catalog.model_name("m")) == ("databricks", "m")
