"""The Databricks runner against a fake workspace that really runs each submitted task (a new
Python process with the wheel's entry point, on a Sail session standing in for the cluster's).

The units through Pipes write the same tables and report the same metadata and check results
as in process; the submitted spec is the configured one; a remote exception, a failing ``fail``
expectation, a task that dies and a missing wheel fail the step with what went wrong;
terminating the Dagster run cancels the Databricks run; serverless and existing clusters get
the Pipes bootstrap on the command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.pipes import utils as pipes_utils
from dagster_pipes import decode_param

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.cdc.apply import TOUCHED_REPORTED_THROUGH
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.partitions import range_tags
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.domains.customers.tables import SILVER_CUSTOMERS
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster.units.remote import RemoteUnit
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster_tests.databricks_harness import (
    CLUSTER_ID,
    PIPES_VOLUME,
    WHEEL,
    databricks_definitions,
    databricks_env,
    fake_workspace,
)
from lakehouse_dagster_tests.events import materializations
from lakehouse_dagster_tests.fake_databricks import WORKLOAD_FAILED, ApiError, FakeWorkspace
from lakehouse_dagster_tests.registries import (
    BIG_METADATA,
    BIG_REPORT,
    DIES,
    RAISES,
    REFUSAL,
    STRICT_SEGMENTS,
    WAITS,
)
from lakehouse_dagster_tests.test_runners import REGISTRY_PATH as STRICT_REGISTRY
from lakehouse_dagster_tests.test_runners import checks, materialized, table
from lakehouse_dagster_tests.units import AS_OF, run_table

BRONZE_CUSTOMERS = dg.AssetKey(["bronze", "bronze.customers"])
DEFAULT_REGISTRY = "lakehouse_dagster.registry:REGISTRY"


def run_assets(
    defs: dg.Definitions, job: str, keys: list[dg.AssetKey], **kwargs
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), asset_selection=keys, raise_on_error=False, **kwargs
    )


def pipes_params(arguments: list[str], flag: str) -> dict:
    return decode_param(arguments[arguments.index(flag) + 1])


def test_serverless_gets_the_pipes_bootstrap_on_the_command_line_and_uses_the_volume(
    tmp_path: Path, sail_url: str, spark, monkeypatch
) -> None:
    landing = tmp_path / "landing"
    generate_customers(landing, rows=120, files=2, seed=3)
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        env = databricks_env(workspace, tmp_path / "lake", landing, LAKEHOUSE_DATABRICKS_COMPUTE="serverless")
        _, defs = databricks_definitions(env, DEFAULT_REGISTRY, monkeypatch)
        result = run_assets(defs, "lakehouse_job", [BRONZE_CUSTOMERS])

        assert result.success, [e.message for e in result.all_events if e.is_failure]
        (submitted,) = workspace.submissions()
        (task,) = submitted["tasks"]
        assert "new_cluster" not in task and "existing_cluster_id" not in task and "libraries" not in task
        (environment,) = submitted["environments"]
        assert task["environment_key"] == environment["environment_key"]
        assert environment["spec"] == {"environment_version": "3", "dependencies": [WHEEL]}
        arguments = task["python_wheel_task"]["parameters"]
        assert arguments[:2] == ["--channel", "volume"]
        context = pipes_params(arguments, "--dagster-pipes-context")
        messages = pipes_params(arguments, "--dagster-pipes-messages")
        assert context["path"].startswith(f"{PIPES_VOLUME}/tmp/") and context["path"].endswith(
            "/context.json"
        )
        assert messages["path"].startswith(f"{PIPES_VOLUME}/tmp/")
        assert workspace.calls("/api/2.0/fs/files" + PIPES_VOLUME), "the context went through the volume"
        assert workspace.calls("/api/2.0/dbfs") == []
        assert workspace.files_left(PIPES_VOLUME + "/tmp") == [], "Pipes cleaned up after itself"
        (run,) = workspace.runs.values()
        assert run.states_seen == ["PENDING", "RUNNING", "TERMINATED/SUCCESS"]

    (materialization,) = materializations(result, TableName("bronze", "customers"))
    tables = DeltaTables(spark, LakeLayout.local(str(tmp_path / "lake"), str(landing)))
    assert (
        materialization.metadata["dagster/row_count"].value
        == tables.read(TableName("bronze", "customers")).count()
    )
    assert materialization.metadata["lakehouse/files_ingested"].value == 2
    assert materialization.metadata["databricks/run_url"].value.endswith(f"/jobs/runs/{run.run_id}")


# The same tables, metadata and checks as in process ---------------------------------------------

SETUP = [  # built in process in both lakes: the inputs of the tables under test
    *(
        dg.AssetKey(["bronze", f"bronze.sales_{t}"])
        for t in ("customers", "products", "orders", "order_items")
    ),
    *(dg.AssetKey(["silver", f"silver.sales_{t}"]) for t in ("customers", "products", "order_items")),
]
UNPARTITIONED = [
    BRONZE_CUSTOMERS,
    dg.AssetKey(["silver", "silver.customers"]),
    dg.AssetKey(["silver", "silver.sales_orders"]),
]
RANGED = [dg.AssetKey(["silver", "silver.sales_order_item_facts"]), dg.AssetKey(["gold", "gold.daily_sales"])]
UNDER_TEST = [TableName.parse(key.path[-1]) for key in UNPARTITIONED + RANGED]
CATALOG = "lakehouse_pipes"
RUN_CONFIG = {"ops": {"silver__customers": {"config": {"as_of_date": AS_OF.isoformat()}}}}


class Build:
    """One lake: the inputs built in process, then the tables under test by ``defs``' runner."""

    def __init__(self, defs: dg.Definitions, setup: dg.Definitions, tables: DeltaTables, days) -> None:
        assert run_assets(setup, "lakehouse_job", SETUP).success
        self.unpartitioned = run_assets(defs, "lakehouse_job", UNPARTITIONED, run_config=RUN_CONFIG)
        self.ranged = run_assets(defs, "sales_facts_job", RANGED, tags=range_tags(days[0], days[-1]))
        self.tables = tables

    def materialized(self) -> dict[str, dict]:
        return {**materialized(self.unpartitioned), **materialized(self.ranged)}

    def checks(self) -> set[tuple]:
        return checks(self.unpartitioned) | checks(self.ranged)


@pytest.fixture(scope="module")
def parity(tmp_path_factory, sail_url: str, spark) -> dict:
    root = tmp_path_factory.mktemp("parity")
    landing = root / "landing"
    generate_customers(landing, rows=300, files=2, seed=11)
    simulation = simulate_retail(days=4, seed=5, customers=80, products=15, orders_per_day=15)
    write_landing(simulation, landing)
    order_days = sorted({date.fromisoformat(ts[:10]) for ts in simulation.truth.tables["orders"]["order_ts"]})
    days = [order_days[0] + timedelta(days=i) for i in range(3)]

    def in_process(lake: Path) -> tuple[dg.Definitions, DeltaTables]:
        layout = LakeLayout.local(str(lake), str(landing))
        settings = LakehouseSettings(Deployment.TEST, layout, EngineSettings(remote_url=sail_url))
        return build_definitions(settings), DeltaTables(spark, layout)

    here_defs, here_tables = in_process(root / "here")
    here = Build(here_defs, here_defs, here_tables, days)
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        fake_workspace(root / "workspace", sail_url) as workspace,
    ):
        env = databricks_env(workspace, root / "pipes", landing, LAKEHOUSE_CATALOG=CATALOG)
        _, pipes_defs = databricks_definitions(env, DEFAULT_REGISTRY, monkeypatch)
        setup_defs, pipes_tables = in_process(root / "pipes")
        pipes = Build(pipes_defs, setup_defs, pipes_tables, days)
    return {"here": here, "pipes": pipes, "workspace": workspace, "days": days, "env": env}


#: Bronze batch ids carry the time they were made: count them.
BATCH_IDS = "lakehouse/batches_applied"


#: What two builds cannot share: their batch ids (how many), the time their progress was recorded.
COMPARED_AS = {BATCH_IDS: len, TOUCHED_REPORTED_THROUGH: lambda applied_at: applied_at > 0}


def without(metadata: dict[str, dict], *prefixes: str) -> dict[str, dict]:
    return {
        asset: {
            key: COMPARED_AS.get(key, lambda value: value)(value)
            for key, value in values.items()
            if not key.startswith(prefixes)
        }
        for asset, values in metadata.items()
    }


def tables_of(materialized: dict[str, dict]) -> dict[str, dict]:
    """The tables' own materialisations, without those of their quarantines and the quality
    history, which their units report besides (and which are compared too)."""
    return {
        key: metadata
        for key, metadata in materialized.items()
        if key.split("/")[0] not in ("quarantine", "ops")
    }


def test_through_pipes_the_tables_metadata_and_checks_are_those_of_the_in_process_runner(parity) -> None:
    here, pipes = parity["here"], parity["pipes"]
    assert here.unpartitioned.success and here.ranged.success
    assert pipes.unpartitioned.success and pipes.ranged.success

    expected, actual = here.materialized(), pipes.materialized()
    assert tables_of(actual).keys() == {"/".join(name.key_path) for name in UNDER_TEST}
    assert without(actual, "databricks/", "dagster/table_name") == without(expected, "dagster/table_name")
    assert here.checks() == pipes.checks()
    # The sample's dirt is within the checks' tolerances: failing rows travel with a passed check.
    assert any(check[4] for check in here.checks()), "a check with failing rows travels too"
    for name in UNDER_TEST:
        pd.testing.assert_frame_equal(table(here.tables, name), table(pipes.tables, name))
    written = pipes.tables.read(TableName("silver", "sales_order_item_facts")).toPandas()["order_date"]
    assert sorted({d.isoformat() for d in written}) == [d.isoformat() for d in parity["days"]], (
        "one run wrote the whole range (the range travelled in the extras)"
    )


def test_each_materialisation_links_its_databricks_run_and_names_its_unity_catalog_table(parity) -> None:
    pipes, workspace = parity["pipes"], parity["workspace"]
    run_ids = set()
    for asset, metadata in tables_of(pipes.materialized()).items():
        run_id = metadata["databricks/run_id"]
        assert metadata["databricks/run_url"] == f"{workspace.host}/jobs/runs/{run_id}"
        assert metadata["dagster/table_name"] == f"{CATALOG}.{asset.split('/')[-1]}"
        run_ids.add(run_id)
    assert run_ids == set(workspace.runs), "one Databricks run per unit"
    assert all(run.states_seen[-1] == "TERMINATED/SUCCESS" for run in workspace.runs.values())


def test_with_a_catalog_every_table_is_registered_as_catalog_layer_table(tmp_path, spark) -> None:
    """Bronze tables too, which the Delta log backend creates (not Spark). The embedded engine's
    catalog lives as long as its session: the unit and the query share one here."""
    catalog = f"lake_{uuid.uuid4().hex[:8]}"
    layout = LakeLayout(**{**vars(LakeLayout.local(str(tmp_path / "lake"))), "catalog": catalog})
    generate_customers(Path(layout.landing), rows=80, files=1, seed=2)
    tables = DeltaTables(spark, layout)
    for name in ("bronze.customers", "silver.customers"):
        report = run_table(tables, name)
        assert report.metadata["dagster/table_name"] == f"{catalog}.{name}"
        assert spark.table(f"{catalog}.{name}").count() == tables.read(TableName.parse(name)).count() > 0


def test_the_submitted_job_cluster_task_is_the_configured_one(parity) -> None:
    submissions, env = parity["workspace"].submissions(), parity["env"]
    assert len(submissions) == len(UNDER_TEST)
    assert len({s["idempotency_token"] for s in submissions}) == len(submissions)
    tables = set()
    for submitted in submissions:
        (task,) = submitted["tasks"]
        cluster = task["new_cluster"]
        assert cluster["spark_version"] == env["LAKEHOUSE_DATABRICKS_SPARK_VERSION"]
        assert cluster["node_type_id"] == env["LAKEHOUSE_DATABRICKS_NODE_TYPE"]
        assert cluster["policy_id"] == env["LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID"]
        assert cluster["apply_policy_default_values"] is True
        assert cluster["autoscale"] == {"min_workers": 1, "max_workers": 3}
        assert cluster["aws_attributes"] == {
            "instance_profile_arn": env["LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN"]
        }
        assert cluster["data_security_mode"] == "SINGLE_USER"
        tags = cluster["custom_tags"]
        assert {k: tags[k] for k in ("Project", "CostCenter")} == json.loads(
            env["LAKEHOUSE_DATABRICKS_CLUSTER_TAGS"]
        )
        tables.add(tags["lakehouse_table"])
        assert task["libraries"] == [{"whl": WHEEL}]
        assert task["python_wheel_task"] == {
            "package_name": "lakehouse_dagster",
            "entry_point": "lakehouse-pipes-unit",
            "parameters": ["--channel", "volume"],
        }
        bootstrap = cluster["spark_env_vars"]
        assert set(bootstrap) == {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
        assert decode_param(bootstrap["DAGSTER_PIPES_CONTEXT"])["path"].startswith(f"{PIPES_VOLUME}/tmp/")
        assert decode_param(bootstrap["DAGSTER_PIPES_MESSAGES"])["path"].startswith(f"{PIPES_VOLUME}/tmp/")
        assert submitted["run_name"].startswith(f"lakehouse {tags['lakehouse_table']}")
    assert tables == {str(name) for name in UNDER_TEST}


# What goes wrong on the cluster -------------------------------------------------------------------

TROUBLE_REGISTRY = "lakehouse_dagster_tests.registries:TROUBLE"


@pytest.fixture
def quick_pipes_close(monkeypatch) -> None:
    """A killed task never sends Pipes' "closed" message; dagster then waits 10 s for late
    messages before it gives up. Nothing comes late from the fake: wait 1 s."""
    monkeypatch.setattr(pipes_utils, "WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 1)


def trouble(tmp_path: Path, workspace: FakeWorkspace, monkeypatch, **overrides: str) -> dg.Definitions:
    env = databricks_env(workspace, tmp_path / "lake", tmp_path / "landing", **overrides)
    return databricks_definitions(env, TROUBLE_REGISTRY, monkeypatch)[1]


def step_failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    return failure


def failure_metadata(failure: dg.DagsterEvent) -> dict:
    error = failure.step_failure_data.user_failure_data
    return {key: value.value for key, value in error.metadata.items()}


def test_a_remote_exception_fails_the_step_with_its_message_traceback_and_run_link(
    tmp_path: Path, sail_url: str, monkeypatch
) -> None:
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        result = run_assets(
            trouble(tmp_path, workspace, monkeypatch), "trouble_job", [dg.AssetKey(RAISES.key_path)]
        )
        (run,) = workspace.runs.values()

    assert not result.success
    failure = step_failure(result)
    assert failure.step_key == "gold__raises"
    assert f"gold.raises: RuntimeError: {REFUSAL}" in failure.event_specific_data.error.message
    metadata = failure_metadata(failure)
    assert "in build_raises" in metadata["error"], "the remote traceback"
    assert metadata["databricks/run_url"] == f"{workspace.host}/jobs/runs/{run.run_id}"
    # Databricks itself only says the workload failed: the message came through Pipes.
    assert (run.states_seen[-1], run.state_message) == ("TERMINATED/FAILED", WORKLOAD_FAILED)
    assert "UnitFailedError" in run.error


def test_a_task_that_dies_without_a_report_fails_the_step_with_the_runs_own_error(
    tmp_path: Path, sail_url: str, monkeypatch, quick_pipes_close
) -> None:
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        result = run_assets(
            trouble(tmp_path, workspace, monkeypatch), "trouble_job", [dg.AssetKey(DIES.key_path)]
        )
        (run,) = workspace.runs.values()

    message = step_failure(result).event_specific_data.error.message
    assert (
        "gold.dies: DatabricksRunFailed: the Databricks run ended TERMINATED/FAILED without a report"
        in message
    )
    assert WORKLOAD_FAILED in message and f"the task's error: {run.error}" in message
    assert run.process.returncode == 3


def test_a_wheel_missing_from_the_workspace_fails_the_step_naming_it(
    tmp_path: Path, sail_url: str, monkeypatch, quick_pipes_close
) -> None:
    with fake_workspace(tmp_path / "workspace", sail_url, wheel=False) as workspace:
        result = run_assets(
            trouble(tmp_path, workspace, monkeypatch), "trouble_job", [dg.AssetKey(RAISES.key_path)]
        )

    message = step_failure(result).event_specific_data.error.message
    assert "INTERNAL_ERROR/FAILED without a report" in message
    assert f"Library installation failed: {WHEEL} does not exist" in message


def test_terminating_the_dagster_run_cancels_the_databricks_run(
    tmp_path: Path, sail_url: str, monkeypatch, quick_pipes_close
) -> None:
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        defs = trouble(tmp_path, workspace, monkeypatch)

        def terminate_once_running() -> None:
            workspace.wait_for_state("RUNNING")
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)  # what the run worker gets when a run is terminated

        threading.Thread(target=terminate_once_running, daemon=True).start()
        result = run_assets(defs, "trouble_job", [dg.AssetKey(WAITS.key_path)])
        (run,) = workspace.runs.values()
        cancels = [r.body for r in workspace.calls("/api/2.2/jobs/runs/cancel")]

    assert not result.success
    failure = step_failure(result).step_failure_data
    assert failure.error_source.value == "INTERRUPT"
    assert f"gold.waits: the Dagster run was terminated; Databricks run {run.run_id} was cancelled" in (
        failure.error.message
    )
    assert cancels == [{"run_id": run.run_id}]
    assert run.states_seen == ["PENDING", "RUNNING", "TERMINATING", "TERMINATED/CANCELED"]
    assert run.process.returncode == -signal.SIGTERM, "the task's process was stopped"


def test_the_whole_lake_layout_and_request_travel_to_the_cluster() -> None:
    layout = LakeLayout(
        root="s3://lake/root",
        landing="s3://landing/files",
        layer_roots={"gold": "s3://gold-bucket/gold"},
        catalog="main",
        aws=AwsConfig(region="eu-west-1", endpoint_url="http://127.0.0.1:5000"),
        landing_stream="clickstream",
    )
    defaults = LakeLayout(root="s3://other", landing="s3://other")
    unset = [
        f.name for f in dataclasses.fields(LakeLayout) if getattr(layout, f.name) == getattr(defaults, f.name)
    ]
    assert unset == [], "set every field here, so that the test sees it travel"
    request = UnitRequest("gold.daily_sales", date(2026, 11, 1), run_id="r1", files=("s3://landing/a b.csv",))
    unit = RemoteUnit(request, layout, Thresholds({"gold.daily_sales": {"x": 0.5}}), "pkg.mod:REGISTRY")

    assert RemoteUnit.from_extras(json.loads(json.dumps(unit.to_extras()))) == unit


def test_a_run_the_step_can_no_longer_follow_is_cancelled_before_the_step_fails(
    tmp_path: Path, sail_url: str, monkeypatch, quick_pipes_close
) -> None:
    """An API error while polling (a rotated credential: 403, which the SDK does not retry) must
    not leave the run writing while a retried step submits another."""
    get_run = FakeWorkspace._get_run

    def refused_once_running(self, query, body):
        run = self._run(query["run_id"])
        running_for = time.monotonic() - (run.started_at or time.monotonic())
        if run.life_cycle_state == "RUNNING" and running_for > 1:
            raise ApiError(403, "PERMISSION_DENIED", "the token expired")
        return get_run(self, query, body)

    monkeypatch.setattr(FakeWorkspace, "_get_run", refused_once_running)
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        result = run_assets(
            trouble(tmp_path, workspace, monkeypatch), "trouble_job", [dg.AssetKey(WAITS.key_path)]
        )
        (run,) = workspace.runs.values()
        cancels = [r.body for r in workspace.calls("/api/2.2/jobs/runs/cancel")]
        run.process.wait(timeout=30)

    message = step_failure(result).event_specific_data.error.message
    assert f"following Databricks run {run.run_id} failed" in message and "the token expired" in message
    assert "the run was cancelled" in message
    assert cancels == [{"run_id": run.run_id}]
    assert run.process.returncode == -signal.SIGTERM, "the task's process was stopped"


@pytest.mark.parametrize("channel", ["dbfs", "volume"])
def test_a_report_larger_than_one_read_arrives_whole(
    tmp_path: Path, sail_url: str, monkeypatch, channel: str
) -> None:
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        defs = trouble(
            tmp_path,
            workspace,
            monkeypatch,
            LAKEHOUSE_DATABRICKS_COMPUTE="existing_cluster",
            LAKEHOUSE_DATABRICKS_CLUSTER_ID=CLUSTER_ID,
            LAKEHOUSE_DATABRICKS_PIPES_CHANNEL=channel,
        )
        result = run_assets(defs, "trouble_job", [dg.AssetKey(BIG_REPORT.key_path)])

    assert result.success
    (materialization,) = materializations(result, BIG_REPORT)
    assert materialization.metadata["lakehouse/big"].value == BIG_METADATA


def test_a_failing_fail_expectation_gives_failed_checks_a_failed_step_and_no_write(
    tmp_path: Path, sail_url: str, spark, monkeypatch
) -> None:
    landing = tmp_path / "landing"
    generate_customers(landing, rows=200, files=2, seed=21)
    layout = LakeLayout.local(str(tmp_path / "lake"), str(landing))
    local = build_definitions(
        LakehouseSettings(Deployment.TEST, layout, EngineSettings(remote_url=sail_url)), STRICT_REGISTRY
    )
    silver = [BRONZE_CUSTOMERS, dg.AssetKey(["silver", "silver.customers"])]
    assert run_assets(local, "all_job", silver, run_config=RUN_CONFIG).success
    tables = DeltaTables(spark, layout)
    versions = {name: tables.version(name) for name in (TableName("bronze", "customers"), SILVER_CUSTOMERS)}
    strict = [dg.AssetKey(STRICT_SEGMENTS.key_path)]
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        env = databricks_env(workspace, tmp_path / "lake", landing)
        pipes = run_assets(databricks_definitions(env, STRICT_REGISTRY, monkeypatch)[1], "all_job", strict)
        (run,) = workspace.runs.values()
    here = run_assets(local, "all_job", strict)

    for result in (pipes, here):
        failure = step_failure(result)
        assert failure.step_key == "gold__strict_segments"
        assert "ExpectationFailedError" in failure.event_specific_data.error.message
        assert "'no_customers'" in failure.event_specific_data.error.message
    assert {(c[1], c[2]) for c in checks(pipes)} == {("no_customers", False), ("counts_customers", True)}
    assert checks(pipes) == checks(here)
    assert "databricks/run_url" in failure_metadata(step_failure(pipes))
    assert run.states_seen[-1] == "TERMINATED/FAILED"
    assert not tables.exists(STRICT_SEGMENTS), "nothing was written"
    assert {name: tables.version(name) for name in versions} == versions


def test_an_existing_cluster_gets_the_bootstrap_on_the_command_line_and_dbfs_carries_it(
    tmp_path: Path, sail_url: str, monkeypatch
) -> None:
    landing = tmp_path / "landing"
    generate_customers(landing, rows=60, files=1, seed=8)
    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        env = databricks_env(
            workspace,
            tmp_path / "lake",
            landing,
            LAKEHOUSE_DATABRICKS_COMPUTE="existing_cluster",
            LAKEHOUSE_DATABRICKS_CLUSTER_ID=CLUSTER_ID,
            LAKEHOUSE_DATABRICKS_PIPES_CHANNEL="dbfs",
        )
        result = run_assets(
            databricks_definitions(env, DEFAULT_REGISTRY, monkeypatch)[1], "lakehouse_job", [BRONZE_CUSTOMERS]
        )
        (submitted,) = workspace.submissions()
        dbfs_calls = {r.path for r in workspace.calls("/api/2.0/dbfs/")}
        volume_calls = workspace.calls("/api/2.0/fs/")
        left = workspace.files_left("/tmp")

    assert result.success
    (task,) = submitted["tasks"]
    assert task["existing_cluster_id"] == CLUSTER_ID and "new_cluster" not in task
    assert task["libraries"] == [{"whl": WHEEL}]
    arguments = task["python_wheel_task"]["parameters"]
    assert arguments[:2] == ["--channel", "dbfs"]
    assert pipes_params(arguments, "--dagster-pipes-context")["path"].startswith("/tmp/")
    assert pipes_params(arguments, "--dagster-pipes-messages")["path"].startswith("/tmp/")
    assert {"/api/2.0/dbfs/put", "/api/2.0/dbfs/read", "/api/2.0/dbfs/delete"} <= dbfs_calls
    assert volume_calls == [] and left == []
