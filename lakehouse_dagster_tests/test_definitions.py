"""The code location: asset graph, checks, jobs, and the resources each deployment gets."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

import lakehouse_dagster
from lakehouse_dagster.catalog.glue import GlueCatalog
from lakehouse_dagster.declarations.table import Domain, Registry, Table
from lakehouse_dagster.declarations.timing import DailyPartitions, Freshness, Job
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import LakehouseSettings, SettingsError, declared_variable_names
from lakehouse_dagster.domains.sales.tables import ORDER_DATES
from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.ingest.sources import FileSource
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.monitoring.metrics_sink import CloudWatchMetrics, LakeMetrics
from lakehouse_dagster.monitoring.notifier import Notifier
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.runners.databricks import DatabricksRunner
from lakehouse_dagster.runners.in_process import InProcessRunner
from lakehouse_dagster.runners.subprocess import SubprocessRunner
from lakehouse_dagster.serving.postgres import PostgresWarehouse
from lakehouse_dagster.serving.redshift import RedshiftWarehouse
from lakehouse_dagster.serving.spec import Serving
from lakehouse_dagster.serving.warehouse import WarehouseUnavailableError

PROD_ENV = {  # dummy values of every setting the production deployment gets from Terraform
    "LAKEHOUSE_DEPLOYMENT": "prod",
    "LAKEHOUSE_ROOT": "s3://acme-silver/_lakehouse",
    "LAKEHOUSE_ROOT_BRONZE": "s3://acme-bronze",
    "LAKEHOUSE_LANDING": "s3://acme-landing",
    "LAKEHOUSE_CATALOG": "lakehouse",
    "AWS_REGION": "eu-west-1",
    "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/dagster",
    "LAKEHOUSE_UNIT_RUNNER": "databricks",
    "DATABRICKS_HOST": "https://dbc-12345678-9abc.cloud.databricks.com",
    "DATABRICKS_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "DATABRICKS_CLIENT_SECRET": "dose-not-a-real-secret",
    "LAKEHOUSE_DATABRICKS_COMPUTE": "job_cluster",
    "LAKEHOUSE_DATABRICKS_ARTIFACTS": "/Volumes/lakehouse/ops/artifacts",
    "LAKEHOUSE_DATABRICKS_PIPES_CHANNEL": "volume",
    "LAKEHOUSE_DATABRICKS_VOLUME": "/Volumes/lakehouse/ops/pipes",
    "LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID": "E0123456789ABCDE",
    "LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN": "arn:aws:iam::123456789012:instance-profile/lakehouse",
    "LAKEHOUSE_DATABRICKS_SPARK_VERSION": "16.4.x-scala2.12",
    "LAKEHOUSE_DATABRICKS_NODE_TYPE": "m6gd.xlarge",
    "LAKEHOUSE_DATABRICKS_MIN_WORKERS": "1",
    "LAKEHOUSE_DATABRICKS_MAX_WORKERS": "4",
    "LAKEHOUSE_DATABRICKS_CLUSTER_TAGS": '{"Project": "lakehouse-prod"}',
    "LAKEHOUSE_DATABRICKS_SERVERLESS_ENVIRONMENT": "3",
    "LAKEHOUSE_ROOT_GOLD": "s3://acme-gold",
    "LAKEHOUSE_WAREHOUSE_WORKGROUP": "acme-bi",
    "LAKEHOUSE_WAREHOUSE_DATABASE": "lakehouse",
    "LAKEHOUSE_GLUE_DATABASE": "acme_lake",
    "LAKEHOUSE_EVENTS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/acme-landing-events",
    "LAKEHOUSE_KINESIS_STREAM": "acme-events",
    "LAKEHOUSE_ALERTS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:lakehouse-prod-alarms",
    "LAKEHOUSE_METRICS_NAMESPACE": "Lakehouse/prod",
    "LAKEHOUSE_DAGSTER_URL": "https://dagster.acme.example",
}
SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def definitions(env: dict[str, str]) -> dg.Definitions:
    return build_definitions(LakehouseSettings.from_env(env))


def test_the_code_location_loads() -> None:
    from lakehouse_dagster.definitions import defs

    dg.Definitions.validate_loadable(defs())


def test_the_code_location_is_built_once_per_environment(monkeypatch, tmp_path) -> None:
    """Dagster loads ``defs`` several times per process: the same environment gives the same
    definitions, built once; a changed environment gives definitions of its own."""
    from lakehouse_dagster.definitions import defs

    monkeypatch.setenv("LAKEHOUSE_DEPLOYMENT", "local")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "first"))
    first = defs()
    assert defs() is first
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "second"))
    second = defs()
    assert second is not first
    assert second.resources["lake"].root == str(tmp_path / "second")
    assert first.resources["lake"].root == str(tmp_path / "first")


# A snapshot of the wiring: an accidental change shows up as a diff --------------------------------


def describe(defs: dg.Definitions, registry: Registry) -> dict:
    """The resolved definitions as plain data: assets, checks, jobs, schedules and sensors."""
    graph = defs.resolve_asset_graph()
    severities = {
        (table.name.key_path[0], table.name.key_path[1], spec.name): spec.severity.value
        for table in registry.tables
        for spec in table.check_specs()
    }
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        freshness = node.freshness_policy
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "owners": list(node.owners),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": partitions.start.date().isoformat() if partitions is not None else None,
            "backfill_policy": str(node.backfill_policy.policy_type) if node.backfill_policy else None,
            "freshness": str(freshness) if freshness else None,
            "automation": str(node.automation_condition.get_label()) if node.automation_condition else None,
            "pools": sorted(node.pools or []),
            # The step that writes it (None: reported by another asset's step).
            "step": defs.resolve_assets_def(key).op.name if node.is_executable else None,
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {
            "blocking": spec.blocking,
            "severity": severities.get((*check_key.asset_key.path, check_key.name), "schema change"),
        }
    jobs = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "assets": sorted(key.to_user_string() for key in job.asset_layer.executable_asset_keys),
            "tags": dict(job.tags),
        }
    schedules = {}
    for unresolved in defs.schedules:
        s = defs.resolve_schedule_def(unresolved.name)
        schedules[s.name] = {"job": s.job_name, "cron": s.cron_schedule, "timezone": s.execution_timezone}
    sensors = {}
    for unresolved in defs.sensors:
        s = defs.resolve_sensor_def(unresolved.name)
        sensors[s.name] = {
            # The automation condition sensor targets assets, and the alert sensors request no runs.
            "job": s.job_name
            if s.targets and not isinstance(s, dg.AutomationConditionSensorDefinition)
            else None,
            "default_status": s.default_status.value,
            "interval": s.minimum_interval_seconds,
        }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_the_wiring_matches_its_snapshot() -> None:
    """After a deliberate change: rewrite it with LAKEHOUSE_UPDATE_SNAPSHOT=1, then review the diff."""
    actual = describe(definitions({"LAKEHOUSE_ROOT": "/tmp/lake"}), REGISTRY)
    if os.environ.get("LAKEHOUSE_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert actual == json.loads(SNAPSHOT.read_text())


# Derived from the declarations ------------------------------------------------------------------


def test_asset_graph_runs_bronze_to_silver_to_gold() -> None:
    graph = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"}).resolve_asset_graph()

    def key(name: str) -> dg.AssetKey:
        return dg.AssetKey(TableName.parse(name).key_path)

    assert graph.get(key("silver.customers")).parent_keys == {key("bronze.customers")}
    assert graph.get(key("gold.customer_segments")).parent_keys == {key("silver.customers")}
    assert graph.get(key("silver.sales_orders")).parent_keys == {
        key("bronze.sales_orders"),
        key("silver.sales_customers"),  # its customer_exists check reads it
    }


def test_every_table_declares_expectations_and_silver_and_gold_a_primary_key() -> None:
    for table in REGISTRY.tables:
        assert table.expectations, f"{table.name} declares no expectation"
        if table.name.layer in ("silver", "gold"):
            assert table.primary_key, f"{table.name} declares no primary key"


def test_assets_link_to_where_their_table_is_declared() -> None:
    defs = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})
    for domain, table in REGISTRY.resolved():
        spec = defs.resolve_assets_def(dg.AssetKey(table.name.key_path)).specs_by_key[
            dg.AssetKey(table.name.key_path)
        ]
        references = spec.metadata["dagster/code_references"].code_references
        declaration = references[0]
        source = Path(declaration.file_path)
        assert source.name == "tables.py" and source.parent.name == domain.name
        line = source.read_text().splitlines()[declaration.line_number - 1]
        assert "Table(" in line or "_bronze(" in line or "_cdc(" in line, (table.name, line)


def test_each_partitioning_has_its_own_job_and_only_its_tables_join_it() -> None:
    """A table partitioned by another day (say, events by event date) gets a job of its own; it
    joins neither the facts job nor its schedule."""
    events_by_day = DailyPartitions(
        "event_date", "event_date", date(2026, 11, 1), Job("events_job", "events")
    )
    events = Table(
        TableName("bronze", "page_events"),
        "events",
        source=FileSource(folder="page_events"),
        partitions=events_by_day,
    )
    registry = Registry(
        domains=(*REGISTRY.domains, Domain("page_events", "events", (events,))),
        default_job=REGISTRY.default_job,
        default_freshness=REGISTRY.default_freshness,
    )

    assert registry.job_tables(ORDER_DATES.job) == REGISTRY.job_tables(ORDER_DATES.job)
    assert registry.job_tables(events_by_day.job) == (events,)
    assert events not in registry.job_tables(registry.default_job)
    assert registry.jobs() == (*REGISTRY.jobs(), events_by_day.job)


def test_declarations_that_do_not_add_up_are_refused() -> None:
    stray = Table(
        TableName("silver", "stray"),
        "reads nothing declared",
        build=lambda c: None,
        inputs=(TableName("bronze", "missing"),),
    )
    with pytest.raises(ValueError, match=r"silver\.stray reads bronze\.missing, which no domain declares"):
        Registry((Domain("d", "d", (stray,)),), Job("j", "j"), Freshness(timedelta(1), timedelta(2)))
    with pytest.raises(ValueError, match="exactly one of source, stream, cdc and build"):
        Table(TableName("silver", "nothing"), "no rows from anywhere")


# Resources by deployment -------------------------------------------------------------------------


def test_local_runs_in_one_process_on_an_embedded_engine() -> None:
    defs = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})

    assert defs.resolve_job_def("lakehouse_job").executor_def.name == dg.in_process_executor.name
    runner = defs.resources["runner"]
    assert isinstance(runner, InProcessRunner) and runner.spark.mode == "embedded"
    assert runner.lake.layout().table_uri(TableName("silver", "customers")) == "/tmp/lake/silver/customers"


def test_a_spark_connect_url_replaces_the_embedded_engine() -> None:
    spark = definitions({"LAKEHOUSE_SPARK_REMOTE": "sc://127.0.0.1:15002"}).resources["runner"].spark
    assert isinstance(spark, SparkResource) and (spark.mode, spark.remote_url) == (
        "remote",
        "sc://127.0.0.1:15002",
    )


def test_units_can_run_in_processes_of_their_own() -> None:
    runner = definitions({"LAKEHOUSE_UNIT_RUNNER": "subprocess"}).resources["runner"]
    assert isinstance(runner, SubprocessRunner) and runner.registry == "lakehouse_dagster.registry:REGISTRY"


def test_production_runs_units_on_databricks_over_s3_roots_and_unity_catalog_names() -> None:
    defs = definitions(PROD_ENV)

    runner = defs.resources["runner"]
    assert isinstance(runner, DatabricksRunner)
    layout = runner.lake.layout()
    assert layout.table_uri(TableName("bronze", "customers")) == "s3://acme-bronze/customers"
    assert layout.table_uri(TableName("ops", "x")) == "s3://acme-silver/_lakehouse/ops/x"
    assert defs.resolve_job_def("lakehouse_job").executor_def.name == dg.multiprocess_executor.name
    assert runner.workspace.host == PROD_ENV["DATABRICKS_HOST"]
    assert (runner.compute, runner.channel, runner.volume, runner.artifacts) == (
        "job_cluster",
        "volume",
        "/Volumes/lakehouse/ops/pipes",
        "/Volumes/lakehouse/ops/artifacts",
    )
    cluster = runner.job_cluster
    assert (cluster.policy_id, cluster.spark_version, cluster.node_type) == (
        "E0123456789ABCDE",
        "16.4.x-scala2.12",
        "m6gd.xlarge",
    )
    assert (cluster.min_workers, cluster.max_workers, cluster.tags) == (1, 4, {"Project": "lakehouse-prod"})
    assert cluster.instance_profile_arn == PROD_ENV["LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN"]
    spec = defs.resolve_assets_def(dg.AssetKey(["silver", "silver.customers"])).specs_by_key[
        dg.AssetKey(["silver", "silver.customers"])
    ]
    assert spec.metadata["dagster/table_name"] == "lakehouse.silver.customers"


def test_the_databricks_runner_is_the_production_default_and_a_spark_connect_url_an_option() -> None:
    default = {k: v for k, v in PROD_ENV.items() if k != "LAKEHOUSE_UNIT_RUNNER"}
    assert isinstance(definitions(default).resources["runner"], DatabricksRunner)
    here = definitions(
        {
            **default,
            "LAKEHOUSE_UNIT_RUNNER": "in_process",
            "LAKEHOUSE_SPARK_REMOTE": "sc://spark.internal:15002",
        }
    ).resources["runner"]
    assert isinstance(here, InProcessRunner) and here.spark.mode == "remote"


def test_serverless_and_existing_clusters_need_only_their_own_settings() -> None:
    job_cluster = {
        f"LAKEHOUSE_DATABRICKS_{name}"
        for name in (
            "CLUSTER_POLICY_ID",
            "INSTANCE_PROFILE_ARN",
            "SPARK_VERSION",
            "NODE_TYPE",
            "MIN_WORKERS",
            "MAX_WORKERS",
            "CLUSTER_TAGS",
        )
    }
    lean = {k: v for k, v in PROD_ENV.items() if k not in job_cluster}
    serverless = definitions({**lean, "LAKEHOUSE_DATABRICKS_COMPUTE": "serverless"}).resources["runner"]
    assert (serverless.compute, serverless.job_cluster, serverless.serverless_environment) == (
        "serverless",
        None,
        "3",
    )
    existing = definitions(
        {
            **lean,
            "LAKEHOUSE_DATABRICKS_COMPUTE": "existing_cluster",
            "LAKEHOUSE_DATABRICKS_CLUSTER_ID": "0101-a",
        }
    ).resources["runner"]
    assert (existing.compute, existing.cluster_id, existing.job_cluster) == (
        "existing_cluster",
        "0101-a",
        None,
    )


def test_dagster_validates_the_production_code_location_with_dummy_settings(tmp_path) -> None:
    """What a deploy runs before it ships: loads the definitions in a fresh process, offline."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DATABRICKS_"))},
        **PROD_ENV,
        "DAGSTER_HOME": str(tmp_path),
    }
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            "lakehouse_dagster.definitions",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "Validation successful" in completed.stdout + completed.stderr


def test_production_serves_redshift_through_a_staging_prefix_of_gold_and_registers_in_glue() -> None:
    resources = definitions(PROD_ENV).resources
    warehouse, catalog = resources["warehouse"], resources["catalog"]
    assert isinstance(warehouse, RedshiftWarehouse)
    assert (warehouse.workgroup, warehouse.database, warehouse.region_name) == (
        "acme-bi",
        "lakehouse",
        "eu-west-1",
    )
    assert warehouse.staging_uri == "s3://acme-gold/_serving_staging"
    assert isinstance(catalog, GlueCatalog) and catalog.database == "acme_lake"


def test_production_alerts_go_to_the_sns_topic_and_metrics_to_cloudwatch() -> None:
    resources = definitions(PROD_ENV).resources
    notifier, metrics = resources["notifier"], resources["metrics"]
    assert isinstance(notifier, Notifier) and isinstance(metrics, CloudWatchMetrics)
    assert notifier.destinations() == ["sns", "log"]
    assert (notifier.sns_topic_arn, notifier.region_name) == (
        PROD_ENV["LAKEHOUSE_ALERTS_TOPIC_ARN"],
        "eu-west-1",
    )
    assert (metrics.namespace, metrics.region_name) == ("Lakehouse/prod", "eu-west-1")
    with_slack = {**PROD_ENV, "LAKEHOUSE_SLACK_CHANNEL": "#data-alerts", "LAKEHOUSE_SLACK_TOKEN": "xoxb-1"}
    notifier = definitions(with_slack).resources["notifier"]
    assert notifier.slack_channel == "#data-alerts"
    assert notifier.slack_token == dg.EnvVar("LAKEHOUSE_SLACK_TOKEN"), "read at run time, never in config"
    with pytest.raises(SettingsError, match=r"LAKEHOUSE_SLACK_CHANNEL is set: .* need LAKEHOUSE_SLACK_TOKEN"):
        definitions({**PROD_ENV, "LAKEHOUSE_SLACK_CHANNEL": "#data-alerts"})
    with pytest.raises(SettingsError, match="LAKEHOUSE_ALERTS_TOPIC_ARN='alarms': expected an SNS topic ARN"):
        definitions({**PROD_ENV, "LAKEHOUSE_ALERTS_TOPIC_ARN": "alarms"})
    with pytest.raises(SettingsError, match="LAKEHOUSE_ALERT_SEVERITY='all': expected one of error, warn"):
        definitions({**PROD_ENV, "LAKEHOUSE_ALERT_SEVERITY": "all"})


def test_locally_alerts_go_to_a_file_under_the_lake_root_and_metrics_to_ops_metrics() -> None:
    resources = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"}).resources
    assert resources["notifier"].destinations() == ["file", "log"]
    assert resources["notifier"].file_path == "/tmp/lake/_alerts/alerts.jsonl"
    assert isinstance(resources["metrics"], LakeMetrics)
    assert resources["metrics"].table_uri == "/tmp/lake/ops/metrics"


def test_locally_the_warehouse_is_postgresql_and_nothing_is_registered_in_glue() -> None:
    resources = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"}).resources
    assert isinstance(resources["warehouse"], PostgresWarehouse)
    assert resources["warehouse"].url is None and resources["warehouse"].local_dir == "./.warehouse"
    assert resources["catalog"].database is None
    url = "postgresql://bi@db.internal:5432/lakehouse"
    assert definitions({"LAKEHOUSE_WAREHOUSE_URL": url}).resources["warehouse"].url == url
    tests = definitions({"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": "/tmp/lake"}).resources[
        "warehouse"
    ]
    with pytest.raises(WarehouseUnavailableError, match="LAKEHOUSE_WAREHOUSE_URL"):
        tests.resolved_url()  # tests never fall back on the project-local warehouse


def test_every_gold_table_is_served_downstream_of_itself_in_its_own_job() -> None:
    defs = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})
    graph = defs.resolve_asset_graph()
    gold = [table for table in REGISTRY.tables if table.name.layer == "gold"]
    assert gold and all(table.served is not None for table in gold)
    for table in gold:
        key = dg.AssetKey(["serving", f"serving.{table.name.table}"])
        assert graph.get(key).parent_keys == {dg.AssetKey(table.name.key_path)}
        assert graph.get(key).partitions_def == graph.get(dg.AssetKey(table.name.key_path)).partitions_def
        if REGISTRY.follows_a_stream(table):  # real-time: served as soon as it is rebuilt
            assert graph.get(key).automation_condition is not None
            continue
        job = table.partitions.job.name if table.partitions else REGISTRY.default_job.name
        assert key in defs.resolve_job_def(job).asset_layer.executable_asset_keys


def test_two_tables_served_under_one_name_are_refused() -> None:
    twin = Table(
        TableName("gold", "daily_sales_copy"),
        "a copy",
        build=lambda c: None,
        serving=Serving(name="daily_sales"),
    )
    with pytest.raises(ValueError, match=r"two tables would be served as serving\.daily_sales"):
        Registry(
            domains=(*REGISTRY.domains, Domain("copies", "copies", (twin,))),
            default_job=REGISTRY.default_job,
            default_freshness=REGISTRY.default_freshness,
        )
    with pytest.raises(ValueError, match="serving name"):
        Serving(name="Daily Sales")


def test_the_deployment_can_move_the_first_day_of_the_partitions() -> None:
    defs = definitions({"LAKEHOUSE_PARTITIONS_START": "2026-10-15"})
    node = defs.resolve_asset_graph().get(dg.AssetKey(["gold", "gold.daily_sales"]))
    assert node.partitions_def.start.date() == date(2026, 10, 15)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEHOUSE_DEPLOYMENT": "staging"}, "LAKEHOUSE_DEPLOYMENT='staging'"),
        ({"LAKEHOUSE_DEPLOYMENT": "test"}, "LAKEHOUSE_ROOT"),
        (
            {**PROD_ENV, "LAKEHOUSE_UNIT_RUNNER": "in_process"},
            "in_process in prod needs LAKEHOUSE_SPARK_REMOTE",
        ),
        ({**PROD_ENV, "DATABRICKS_HOST": ""}, "needs DATABRICKS_HOST"),
        ({**PROD_ENV, "DATABRICKS_HOST": "dbc-1.cloud.databricks.com"}, "DATABRICKS_HOST=.*expected a URL"),
        ({**PROD_ENV, "DATABRICKS_CLIENT_SECRET": ""}, "needs credentials: DATABRICKS_CLIENT_SECRET"),
        ({**PROD_ENV, "DATABRICKS_TOKEN": "dapi1"}, "both DATABRICKS_TOKEN and DATABRICKS_CLIENT_ID"),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_ARTIFACTS": ""}, "needs LAKEHOUSE_DATABRICKS_ARTIFACTS"),
        (
            {**PROD_ENV, "LAKEHOUSE_DATABRICKS_ARTIFACTS": "artifacts"},
            "LAKEHOUSE_DATABRICKS_ARTIFACTS='artifacts'",
        ),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_COMPUTE": "gpu"}, "LAKEHOUSE_DATABRICKS_COMPUTE='gpu'"),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_VOLUME": ""}, "needs LAKEHOUSE_DATABRICKS_VOLUME"),
        (
            {**PROD_ENV, "LAKEHOUSE_DATABRICKS_VOLUME": "/Volumes/lakehouse/ops"},
            "LAKEHOUSE_DATABRICKS_VOLUME=",
        ),
        (
            {
                **PROD_ENV,
                "LAKEHOUSE_DATABRICKS_COMPUTE": "serverless",
                "LAKEHOUSE_DATABRICKS_PIPES_CHANNEL": "dbfs",
            },
            "PIPES_CHANNEL=dbfs: serverless",
        ),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_SPARK_VERSION": ""}, "needs LAKEHOUSE_DATABRICKS_SPARK_VERSION"),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_MIN_WORKERS": "5"}, "MIN_WORKERS=5 and .*MAX_WORKERS=4"),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_MAX_WORKERS": "two"}, "LAKEHOUSE_DATABRICKS_MAX_WORKERS='two'"),
        (
            {**PROD_ENV, "LAKEHOUSE_DATABRICKS_CLUSTER_TAGS": "Project=x"},
            "LAKEHOUSE_DATABRICKS_CLUSTER_TAGS: not JSON",
        ),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_CLUSTER_TAGS": '{"n": 1}'}, "CLUSTER_TAGS=.*string values"),
        (
            {**PROD_ENV, "LAKEHOUSE_DATABRICKS_COMPUTE": "existing_cluster"},
            "needs LAKEHOUSE_DATABRICKS_CLUSTER_ID",
        ),
        ({"LAKEHOUSE_SPARK_REMOTE": "localhost:15002"}, "LAKEHOUSE_SPARK_REMOTE: .*sc://"),
        ({"LAKEHOUSE_AS_OF_DATE": "26/11/2026"}, "LAKEHOUSE_AS_OF_DATE"),
        ({"LAKEHOUSE_PARTITIONS_START": "soon"}, "LAKEHOUSE_PARTITIONS_START"),
        ({"LAKEHOUSE_UNIT_RUNNER": "cluster"}, "LAKEHOUSE_UNIT_RUNNER='cluster'"),
        ({"LAKEHOUSE_CATALOG": "main; DROP"}, "LAKEHOUSE_CATALOG"),
        ({"LAKEHOUSE_ROOT": "/tmp/my lake"}, r"LAKEHOUSE_ROOT=.*contains ' '"),
        ({"LAKEHOUSE_ROOT": "/tmp/lake#1"}, r"LAKEHOUSE_ROOT=.*contains '#'"),
        ({"LAKEHOUSE_ROOT": "/tmp/100%"}, r"LAKEHOUSE_ROOT=.*contains '%'"),
        ({"LAKEHOUSE_ROOT": "/tmp/o'brien"}, r"LAKEHOUSE_ROOT=.*contains \"'\""),
        ({"LAKEHOUSE_ROOT_GOLD": "s3://gold bucket/x"}, r"LAKEHOUSE_ROOT_GOLD=.*contains ' '"),
        ({"LAKEHOUSE_ROOT": "s3://lake/a%20b"}, r"LAKEHOUSE_ROOT=.*contains '%'"),
        ({**PROD_ENV, "LAKEHOUSE_KINESIS_STREAM": ""}, "LAKEHOUSE_KINESIS_STREAM"),
        (
            {**PROD_ENV, "LAKEHOUSE_AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
            "LAKEHOUSE_AWS_ENDPOINT_URL is for",
        ),
        ({"LAKEHOUSE_AWS_ENDPOINT_URL": "127.0.0.1:5000"}, "LAKEHOUSE_AWS_ENDPOINT_URL=.*http://"),
        ({"LAKEHOUSE_STREAM_INTERVAL_SECONDS": "2"}, "LAKEHOUSE_STREAM_INTERVAL_SECONDS='2'"),
        ({"LAKEHOUSE_STREAM_INTERVAL_SECONDS": "²"}, "LAKEHOUSE_STREAM_INTERVAL_SECONDS='²'"),
        ({**PROD_ENV, "LAKEHOUSE_DATABRICKS_MIN_WORKERS": "٣"}, "LAKEHOUSE_DATABRICKS_MIN_WORKERS"),
        ({"LAKEHOUSE_WAREHOUSE_URL": "not a url"}, "LAKEHOUSE_WAREHOUSE_URL: expected a PostgreSQL URL"),
        (
            {"LAKEHOUSE_WAREHOUSE_URL": "mysql://u:pw@h/db"},
            "LAKEHOUSE_WAREHOUSE_URL: .*got one starting 'mysql'",
        ),
    ],
)
def test_wrong_settings_name_the_variable(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        LakehouseSettings.from_env(env)


def test_a_landing_zone_may_hold_any_character() -> None:
    """It is read with Arrow, which keeps paths as they are; only the engine's tables need care."""
    settings = LakehouseSettings.from_env(
        {"LAKEHOUSE_ROOT": "/tmp/lake", "LAKEHOUSE_LANDING": "/tmp/my landing #1"}
    )
    assert settings.layout.landing == "/tmp/my landing #1"


# The environment is read in one place --------------------------------------------------------------


_VARIABLE = re.compile(r"^(LAKEHOUSE|AWS|DATABRICKS|DAGSTER|RUST)_[A-Z0-9_]+$")


def _environment_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """Every direct access to the process environment: (line, how)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in (
            "environ",
            "getenv",
            "putenv",
            "unsetenv",
            "environb",
        ):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv", "putenv", "unsetenv"):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                (node.lineno, alias.name)
                for alias in node.names
                if alias.name in ("environ", "getenv", "putenv")
            ]
    return found


def _variable_names(tree: ast.AST) -> set[str]:
    """String constants that name environment variables (``EnvVar("X")`` included)."""
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _VARIABLE.match(node.value)
    }


def test_only_the_deployment_module_touches_the_environment_and_only_declared_variables() -> None:
    package = Path(lakehouse_dagster.__file__).parent
    outside, names = [], set()
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        tree = ast.parse(path.read_text())
        names |= _variable_names(tree)
        if relative != "deployment.py":
            outside += [f"{relative}:{line} {how}" for line, how in _environment_uses(tree)]
    assert outside == [], "only deployment.py may read or write the environment"
    assert {"RUST_LOG", "LAKEHOUSE_ROOT", "LAKEHOUSE_SPARK_REMOTE"} <= names, "the scan finds the known names"
    undeclared = names - declared_variable_names()
    assert undeclared == set(), f"undeclared environment variables: {undeclared}"


def test_the_scan_catches_every_way_of_touching_the_environment() -> None:
    sample = """
import os
from os import getenv
os.environ.setdefault("LAKEHOUSE_A", "1")
os.environ["LAKEHOUSE_B"] = "2"
os.getenv("LAKEHOUSE_C")
getenv("LAKEHOUSE_D")
os.putenv("LAKEHOUSE_E", "3")
dg.EnvVar("LAKEHOUSE_F")
"""
    tree = ast.parse(sample)
    hows = [how for _, how in _environment_uses(tree)]
    assert hows.count("environ") == 2 and hows.count("getenv") == 3 and "putenv" in hows
    assert _variable_names(tree) == {f"LAKEHOUSE_{c}" for c in "ABCDEF"}


def _delta_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module opens the Delta log (imports deltalake) or reaches lake tables through the
    engine itself (``spark.sql(...)``, a ``format("delta")`` reader or writer)."""
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "deltalake" for a in node.names):
            uses.append((node.lineno, "import deltalake"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "deltalake":
            uses.append((node.lineno, "from deltalake"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "sql" and _name_of(node.func.value) == "spark":
                uses.append((node.lineno, "spark.sql"))
            elif node.func.attr == "format" and [_constant(a) for a in node.args] == ["delta"]:
                uses.append((node.lineno, 'format("delta")'))
    return uses


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _constant(node: ast.AST) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def test_only_the_lake_package_opens_the_delta_log_or_builds_table_sql() -> None:
    package = Path(lakehouse_dagster.__file__).parent
    outside, inside = [], []
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        uses = [f"{relative}:{line} {how}" for line, how in _delta_uses(ast.parse(path.read_text()))]
        (inside if relative.startswith("lake/") else outside).extend(uses)
    assert outside == [], "only lake/ may open a Delta log or build table SQL"
    assert {"import deltalake", "spark.sql", 'format("delta")'} <= {use.split(" ", 1)[1] for use in inside}


def test_the_delta_scan_catches_every_way_of_reaching_a_lake_table() -> None:
    sample = """
import deltalake
from deltalake import DeltaTable
self.spark.sql("MERGE INTO t USING s ON t.id = s.id")
spark.sql("SELECT 1")
frame.write.format("delta").save(uri)
cursor.execute("DELETE FROM served WHERE day = %s")
"""
    hows = [how for _, how in _delta_uses(ast.parse(sample))]
    assert sorted(hows) == sorted(
        ["import deltalake", "from deltalake", "spark.sql", "spark.sql", 'format("delta")']
    )


def test_every_asset_has_a_freshness_policy_and_a_schema_change_check() -> None:
    """Every asset of data with a step of its own (a table's maintenance asset holds no rows of
    its own); the quarantines and the quality history are reported by the steps of the tables
    that write them."""
    graph = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"}).resolve_asset_graph()
    executable = {
        key
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_executable and graph.get(key).group_name != "maintenance"
    }
    checked = {key.asset_key for key in graph.asset_check_keys if key.name == "column_schema_change"}

    assert all(graph.get(key).freshness_policy is not None for key in executable)
    assert checked == executable
    reported = {key for key in graph.get_all_asset_keys() if not graph.get(key).is_executable}
    assert {key.path[0] for key in reported} == {"quarantine", "ops"}


def test_every_asset_is_labelled_with_its_own_table_name() -> None:
    """The graph, the sidebar and the search label an asset with the last part of its key: it is
    the full name of the table (bronze.customers, silver.customers, quarantine.customers,
    serving.daily_sales), never shared, and the first part is the layer."""
    graph = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"}).resolve_asset_graph()
    keys = list(graph.get_all_asset_keys())
    labels = [key.path[-1] for key in keys]
    assert len(set(labels)) == len(labels) == len(keys)
    maintenance = {key for key in keys if graph.get(key).group_name == "maintenance"}
    assert maintenance == {
        dg.AssetKey(["maintenance", t.name.layer, f"maintenance.{t.name}"]) for t in REGISTRY.tables
    }
    for key in set(keys) - maintenance:
        layer, name = key.path
        assert name.startswith(f"{layer}.") and name.count(".") == 1, key
    assert {t.name.table for t in REGISTRY.tables if t.name.layer == "bronze"} & {
        t.name.table for t in REGISTRY.tables if t.name.layer == "silver"
    }, "tables of two layers share a name: their labels must not"


def test_the_partitions_start_on_the_first_day_of_the_sample_data() -> None:
    """make run's sample orders start on the declared first day: no empty days before them."""
    from lakehouse_dagster import cli
    from lakehouse_dagster.sample_data.retail import simulate_retail

    simulation = simulate_retail(
        days=cli.SAMPLE_RETAIL_DAYS, seed=cli.SAMPLE_SEED, customers=50, products=10, orders_per_day=300
    )
    first = min(date.fromisoformat(ts[:10]) for ts in simulation.truth.tables["orders"]["order_ts"])
    assert first == ORDER_DATES.start


# Sensors and streams -------------------------------------------------------------------------------


def test_make_run_needs_no_stream_the_stream_tables_join_no_job() -> None:
    streaming = {str(t.name) for t in REGISTRY.tables if REGISTRY.follows_a_stream(t)}
    assert streaming == {
        "bronze.events",
        "silver.events",
        "gold.events_per_minute",
        "gold.funnel_last_hour",
        "gold.revenue_last_hour",
    }
    for job in REGISTRY.jobs():
        assert not {str(t.name) for t in REGISTRY.job_tables(job)} & streaming, job.name


def sensor_status(defs: dg.Definitions, name: str) -> dg.DefaultSensorStatus:
    return defs.resolve_sensor_def(name).default_status


def test_which_sensors_run_by_default_follows_the_deployment() -> None:
    local = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})
    running, stopped = dg.DefaultSensorStatus.RUNNING, dg.DefaultSensorStatus.STOPPED
    assert sensor_status(local, "lakehouse_automation_sensor") is running
    assert sensor_status(local, "landing_files_sensor") is running, "no queue: the folders are listed"
    assert sensor_status(local, "landing_events_sensor") is stopped
    assert sensor_status(local, "bronze_events_microbatch_sensor") is stopped, "no stream to read"

    prod = definitions(PROD_ENV)
    assert sensor_status(prod, "landing_events_sensor") is running
    assert sensor_status(prod, "landing_files_sensor") is stopped, "events, not listings, in production"
    assert sensor_status(prod, "bronze_events_microbatch_sensor") is running
    automation = prod.resolve_sensor_def("lakehouse_automation_sensor")
    assert automation.minimum_interval_seconds == 5, "a third of the stream's 15 s"


def test_aws_clients_point_at_the_local_endpoint_and_never_carry_a_key() -> None:
    local = definitions(
        {"LAKEHOUSE_AWS_ENDPOINT_URL": "http://127.0.0.1:5123", "LAKEHOUSE_KINESIS_STREAM": "s"}
    )
    for name in ("s3", "sqs", "kinesis"):
        resource = local.resources[name]
        assert (resource.endpoint_url, resource.region_name) == ("http://127.0.0.1:5123", "us-east-1")
        assert resource.aws_access_key_id is None and resource.aws_secret_access_key is None
    lake = local.resources["runner"].lake
    assert (lake.aws_endpoint_url, lake.landing_stream) == ("http://127.0.0.1:5123", "s")
    prod = definitions(PROD_ENV)
    assert (prod.resources["sqs"].endpoint_url, prod.resources["sqs"].region_name) == (None, "eu-west-1")
