"""Metrics of each materialisation: the declared names and dimensions, on moto's CloudWatch (on
127.0.0.1) in production's shape, and in ``ops.metrics`` locally. Expected values are computed
with pandas over the rows the table was given."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import dagster as dg
import deltalake
import pandas as pd
import pyarrow as pa
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.monitoring.metrics import METRICS, METRICS_TABLE, Measurement
from lakehouse_dagster.monitoring.metrics_sink import MAX_DATUMS, CloudWatchMetrics

from . import registries
from .registries import NUMBER_EXPECTATIONS, NUMBERS

OPERATIONS = "lakehouse_dagster_tests.registries:OPERATIONS"
REGION = "us-east-1"
ROWS = [(1, "one"), (2, "two"), (3, "a label too long"), (None, "no id"), (4, "four"), (None, "none")]


@pytest.fixture
def defs(sail_url, layout, monkeypatch) -> dg.Definitions:
    monkeypatch.setattr(registries, "NUMBER_ROWS", ROWS)
    settings = LakehouseSettings(Deployment.TEST, layout, EngineSettings(remote_url=sail_url))
    return build_definitions(settings, OPERATIONS)


def materialize(defs: dg.Definitions, instance, **resources) -> dg.ExecuteInProcessResult:
    asset = defs.get_assets_def(dg.AssetKey(NUMBERS.key_path))
    result = dg.materialize([asset], resources={**defs.resources, **resources}, instance=instance)
    assert result.success
    return result


def expected() -> dict:
    frame = pd.DataFrame(ROWS, columns=["id", "label"])
    kept = frame[frame["id"].notna()]
    return {
        "rows_written": len(kept),
        "rows_quarantined": len(frame) - len(kept),
        "ratios": {
            "id_present": frame["id"].isna().mean(),
            "id_not_negative": (frame["id"] < 0).mean(),
            "short_label": (frame["label"].str.len() > 5).mean(),
        },
    }


def test_metrics_are_published_to_cloudwatch_with_the_declared_names_and_dimensions(
    defs, moto_server, monkeypatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    namespace = f"Lakehouse/test-{uuid.uuid4().hex[:8]}"
    sink = CloudWatchMetrics(namespace=namespace, region_name=REGION, endpoint_url=moto_server.endpoint_url)
    with dg.instance_for_test() as instance:
        materialize(defs, instance, metrics=sink)
        materialize(defs, instance, metrics=sink)  # the second one has a freshness lag

    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=moto_server.endpoint_url)
    listed = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    published = {(m["MetricName"], frozenset(d["Name"] for d in m["Dimensions"])) for m in listed}
    assert published == {(spec.name, frozenset(dims)) for spec in METRICS for dims in spec.dimensions}
    expectations = {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "Expectation"}
    assert expectations == {e.name for e in NUMBER_EXPECTATIONS}
    assert {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "Table"} == {str(NUMBERS)}

    def statistic(metric: str, stat: str, **dimensions: str) -> float:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(hours=1),
            Period=7200,
            Statistics=[stat],
        )["Datapoints"]
        return sum(point[stat] for point in points)

    truth = expected()
    assert statistic("RowsWritten", "Sum", Table=str(NUMBERS)) == 2 * truth["rows_written"]
    assert statistic("RowsQuarantined", "Sum", Table=str(NUMBERS)) == 2 * truth["rows_quarantined"]
    for expectation, ratio in truth["ratios"].items():
        dimensions = {"Table": str(NUMBERS), "Expectation": expectation}
        assert math.isclose(statistic("ExpectationFailureRatio", "Maximum", **dimensions), ratio), expectation
    assert statistic("MaterializationDuration", "SampleCount", Table=str(NUMBERS)) == 2
    assert statistic("FreshnessLag", "SampleCount", Table=str(NUMBERS)) == 1
    assert 0 < statistic("FreshnessLag", "Maximum", Table=str(NUMBERS)) < 3600


def test_the_local_deployment_writes_the_measurements_to_ops_metrics(defs, layout) -> None:
    with dg.instance_for_test() as instance:
        result = materialize(defs, instance)
    query = deltalake.QueryBuilder().register(
        "metrics", deltalake.DeltaTable(layout.table_uri(METRICS_TABLE))
    )
    frame = pa.table(query.execute("SELECT * FROM metrics").read_all()).to_pandas()
    first = {spec.name for spec in METRICS} - {"FreshnessLag"}  # no lag before a second materialisation
    assert set(frame["metric"]) == first
    assert set(frame["table"]) == {str(NUMBERS)} and set(frame["run_id"]) == {result.run_id}
    truth = expected()
    by_metric = frame.set_index("metric")
    assert by_metric.loc["RowsWritten", "value"] == truth["rows_written"]
    assert by_metric.loc["RowsQuarantined", "value"] == truth["rows_quarantined"]
    ratios = frame[frame["metric"] == "ExpectationFailureRatio"].set_index("expectation")["value"].to_dict()
    assert ratios == pytest.approx(truth["ratios"])


def test_a_metrics_sink_that_fails_does_not_fail_the_materialisation(defs, monkeypatch, caplog) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    unreachable = CloudWatchMetrics(
        namespace="Lakehouse/x", region_name=REGION, endpoint_url="http://127.0.0.1:9"
    )
    with dg.instance_for_test() as instance:
        result = materialize(defs, instance, metrics=unreachable)
        logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert result.success
    assert any("silver.numbers: metrics not published" in message for message in logs)


def test_put_metric_data_is_batched() -> None:
    class Recording:
        def __init__(self) -> None:
            self.calls: list[dict] = []

        def put_metric_data(self, **call) -> None:
            self.calls.append(call)

    sink = CloudWatchMetrics(namespace="Lakehouse/prod")
    client = Recording()
    sink._client = client
    at = datetime.now(UTC)
    measurements = [Measurement("RowsWritten", float(i), f"bronze.t{i}", at) for i in range(1234)]
    sink.publish(measurements, "run")
    sizes = [len(call["MetricData"]) for call in client.calls]
    datums = sum(len(spec_dims) for spec_dims in [METRICS[0].dimensions] * len(measurements))
    assert sum(sizes) == datums and max(sizes) <= MAX_DATUMS
    assert len(client.calls) == math.ceil(datums / MAX_DATUMS)
    assert {call["Namespace"] for call in client.calls} == {"Lakehouse/prod"}
    # Each measurement per table, and rolled up over all tables (no dimension), with its value.
    first = [datum for datum in client.calls[0]["MetricData"] if datum["Value"] == 7.0]
    assert sorted(str(datum["Dimensions"]) for datum in first) == sorted(
        [str([{"Name": "Table", "Value": "bronze.t7"}]), str([])]
    )
    assert {datum["Unit"] for datum in first} == {"Count"}
