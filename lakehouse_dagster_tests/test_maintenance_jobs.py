"""Maintenance in Dagster: its assets, job and schedules, and the table pools that keep a table's
maintenance and its writes from running at the same moment (checked on the instance's pools)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import deltalake
import pytest
import yaml
from dagster._core.events import DagsterEventType

from lakehouse_dagster.declarations.maintenance import Maintenance
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.maintenance import maintenance_key
from lakehouse_dagster.defs.pools import ENGINE_POOL
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.registry import REGISTRY

from . import registries
from .registries import NUMBERS

OPERATIONS = "lakehouse_dagster_tests.registries:OPERATIONS"
PROJECT_INSTANCE = Path(__file__).resolve().parents[1] / "dagster.yaml"
WRITE_STEP, MAINTENANCE_STEP = "silver__numbers", "maintenance__silver__numbers"
MAINTENANCE_KEY = dg.AssetKey(["maintenance", "silver", "maintenance.silver.numbers"])


@pytest.fixture
def settings(sail_url: str, layout: LakeLayout) -> LakehouseSettings:
    return LakehouseSettings(Deployment.TEST, layout, EngineSettings(remote_url=sail_url))


@pytest.fixture
def instance():
    """An instance configured by the project's dagster.yaml (one slot per pool)."""
    with dg.instance_for_test(overrides=yaml.safe_load(PROJECT_INSTANCE.read_text())) as test_instance:
        yield test_instance


@pytest.mark.parametrize(
    ("env", "pool_of"),
    [
        ({}, lambda table: ENGINE_POOL),  # the embedded engine: every table's step in one pool
        ({"LAKEHOUSE_SPARK_REMOTE": "sc://spark:15002"}, lambda table: str(table.name)),
    ],
    ids=["embedded engine", "shared engine"],
)
def test_every_table_has_a_maintenance_asset_in_its_pool_a_job_and_a_weekly_schedule(env, pool_of) -> None:
    defs = build_definitions(LakehouseSettings.from_env({"LAKEHOUSE_ROOT": "/tmp/lake", **env}))
    graph = defs.resolve_asset_graph()
    tables = REGISTRY.tables
    for table in tables:
        write = graph.get(dg.AssetKey(table.name.key_path))
        maintain = graph.get(maintenance_key(table))
        assert write.pools == maintain.pools == {pool_of(table)}, table.name
        assert maintain.group_name == "maintenance"
        assert dg.AssetKey(table.name.key_path) in maintain.parent_keys
    job = defs.resolve_job_def("lakehouse_maintenance_job")
    assert len(job.asset_layer.executable_asset_keys) == len(tables)
    schedule = defs.resolve_schedule_def("lakehouse_maintenance_job_schedule")
    assert schedule.cron_schedule == "0 3 * * 0" and schedule.execution_timezone == "UTC"


def test_a_table_with_its_own_cron_gets_its_own_schedule(settings, monkeypatch) -> None:
    from dataclasses import replace

    nightly = replace(registries.OPERATIONS.domains[0].tables[0], maintenance=Maintenance(cron="30 1 * * *"))
    domain = replace(
        registries.OPERATIONS.domains[0], tables=(nightly, *registries.OPERATIONS.domains[0].tables[1:])
    )
    monkeypatch.setattr(
        registries, "NIGHTLY", replace(registries.OPERATIONS, domains=(domain,)), raising=False
    )
    defs = build_definitions(settings, "lakehouse_dagster_tests.registries:NIGHTLY")

    own = defs.resolve_schedule_def("maintain_silver__numbers")
    assert own.cron_schedule == "30 1 * * *"
    weekly = defs.resolve_schedule_def("lakehouse_maintenance_job_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=None)
    (request,) = own.evaluate_tick(context).run_requests
    assert request.asset_selection == [MAINTENANCE_KEY]
    (request,) = weekly.evaluate_tick(context).run_requests
    assert request.asset_selection == [
        dg.AssetKey(["maintenance", "gold", "maintenance.gold.fails_downstream"])
    ]


def test_the_maintenance_asset_reports_files_and_bytes_before_and_after(settings, instance, tables) -> None:
    defs = build_definitions(settings, OPERATIONS)
    write = defs.resolve_job_def("operations_job")
    for _ in range(2):  # two versions: the first one's file is removed by the second
        assert write.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey(NUMBERS.key_path)]
        ).success
    uri = tables.uri(NUMBERS)
    before = deltalake.DeltaTable(uri).file_uris()

    result = defs.resolve_job_def("lakehouse_maintenance_job").execute_in_process(
        instance=instance, asset_selection=[MAINTENANCE_KEY]
    )

    (materialization,) = result.asset_materializations_for_node(MAINTENANCE_STEP)
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["lakehouse/maintenance/files_before"] == len(before)
    assert metadata["lakehouse/maintenance/files_after"] == len(deltalake.DeltaTable(uri).file_uris())
    assert metadata["lakehouse/maintenance/bytes_after"] > 0
    assert metadata["dagster/uri"] == uri


def _run_in_thread(job: dg.JobDefinition, instance, key: dg.AssetKey) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        outcome["result"] = job.execute_in_process(instance=instance, asset_selection=[key])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("holder_step", "waiting_job", "waiting_key", "waiting_step"),
    [
        (WRITE_STEP, "lakehouse_maintenance_job", MAINTENANCE_KEY, MAINTENANCE_STEP),
        (MAINTENANCE_STEP, "operations_job", dg.AssetKey(NUMBERS.key_path), WRITE_STEP),
    ],
    ids=["maintenance waits for a write", "a write waits for maintenance"],
)
def test_maintenance_and_writes_of_a_table_never_run_at_once(
    settings, instance, tables, holder_step, waiting_job, waiting_key, waiting_step
) -> None:
    """While a run holds the table's pool slot, the other kind of step of that table waits in the
    pool (the instance shows it pending) and touches nothing; it runs once the slot is free."""
    defs = build_definitions(settings, OPERATIONS)
    setup = defs.resolve_job_def("operations_job").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(NUMBERS.key_path)]
    )
    assert setup.success
    storage = instance.event_log_storage
    pool = str(NUMBERS)
    # Another run's step holds the table's pool, as a running write (or maintenance) does.
    assert storage.claim_concurrency_slot(pool, "holding-run", holder_step).is_claimed
    version = tables.version(NUMBERS)

    thread, outcome = _run_in_thread(defs.resolve_job_def(waiting_job), instance, waiting_key)
    _wait_for(
        lambda: storage.get_concurrency_info(pool).pending_step_count == 1, "the step to wait in the pool"
    )
    info = storage.get_concurrency_info(pool)
    assert (info.limit, info.active_run_ids) == (1, {"holding-run"})
    (waiting,) = [step for step in info.pending_steps if step.assigned_timestamp is None]
    assert waiting.step_key == waiting_step
    time.sleep(1.5)  # the waiting step retries its claim meanwhile: it must still be waiting
    assert thread.is_alive() and tables.version(NUMBERS) == version
    assert not instance.all_logs(waiting.run_id, of_type=DagsterEventType.STEP_START), (
        "it started while blocked"
    )

    freed_at = time.time()
    storage.free_concurrency_slot_for_step("holding-run", holder_step)
    thread.join(timeout=120)
    assert not thread.is_alive()
    result = outcome["result"]
    assert result.success and result.run_id == waiting.run_id
    starts = instance.all_logs(waiting.run_id, of_type=DagsterEventType.STEP_START)
    (started,) = [event for event in starts if event.step_key == waiting_step]
    assert started.timestamp >= freed_at, "it ran once the slot was free"
    assert storage.get_concurrency_info(pool).active_slot_count == 0


def test_on_databricks_the_maintenance_unit_runs_as_a_job_run_through_pipes(
    tmp_path: Path, sail_url: str, monkeypatch
) -> None:
    """The request travels in the Pipes extras: the cluster runs the maintenance, not a build."""
    from lakehouse_dagster_tests.databricks_harness import (
        databricks_definitions,
        databricks_env,
        fake_workspace,
    )

    with fake_workspace(tmp_path / "workspace", sail_url) as workspace:
        env = databricks_env(workspace, tmp_path / "lake", tmp_path / "landing")
        _, defs = databricks_definitions(env, OPERATIONS, monkeypatch)
        for job, key in (
            ("operations_job", dg.AssetKey(NUMBERS.key_path)),
            ("lakehouse_maintenance_job", MAINTENANCE_KEY),
        ):
            result = defs.resolve_job_def(job).execute_in_process(
                instance=dg.DagsterInstance.ephemeral(), asset_selection=[key], raise_on_error=False
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
        build, maintenance = workspace.submissions()
    assert maintenance["run_name"].startswith("lakehouse silver.numbers maintenance")
    assert build["idempotency_token"] != maintenance["idempotency_token"]
    (materialization,) = result.asset_materializations_for_node(MAINTENANCE_STEP)
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["lakehouse/maintenance/files_after"] == 1
    assert metadata["databricks/run_url"].startswith(workspace.host)
    # The table, and the ops tables written by its unit (on the cluster) and its step (the metrics).
    assert set(metadata["lakehouse/maintenance/tables"]) == {
        "silver.numbers",
        "ops.data_quality",
        "ops.metrics",
    }
