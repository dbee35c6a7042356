"""`make run`: sample data is landed once, the runs are recorded in the project's Dagster instance
as runs of the workspace's code location, the sample data's usual dirt leaves every check green,
and every column written is documented (gold's traced to silver)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from lakehouse_dagster import cli
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.launch import CODE_LOCATION, DEFINITIONS_MODULE, code_location
from lakehouse_dagster.registry import REGISTRY

ROOT = Path(__file__).parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch, sail_url, warehouse_url) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.local.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LAKEHOUSE_DEPLOYMENT", "local")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", sail_url)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setattr(cli, "SAMPLE_ROWS", 400)
    monkeypatch.setattr(cli, "SAMPLE_RETAIL_DAYS", 3)
    return tmp_path


def key(name: str) -> dg.AssetKey:
    return dg.AssetKey(TableName.parse(name).key_path)


def test_make_run_lands_sample_data_records_runs_and_prints_gold(project: Path, capsys) -> None:
    assert cli.main(["run"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["run"]) == 0
    second = capsys.readouterr().out

    landed = sorted((project / "lake" / "landing" / "customers").glob("*.csv"))
    assert len(landed) == cli.SAMPLE_FILES
    assert list((project / "lake" / "landing" / "dms" / "sales" / "orders").glob("LOAD*.csv"))
    assert "landing zone was empty" in first and "landing zone was empty" not in second
    assert "no DMS files" in first and "no DMS files" not in second
    assert "gold.customer_segments" in second and "gold.daily_sales" in second and "FAILURE" not in second
    assert "serving.daily_sales" in second and "make dashboard" in second and "not loaded yet" not in second
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 4
        facts_runs = [run for run in runs if run.job_name == "sales_facts_job"]
        assert len(facts_runs) == 2, "the partitions are built as one range run per make run"
        assert all("dagster/asset_partition_range_start" in run.tags for run in facts_runs)
        for name in ("gold.customer_segments", "gold.daily_sales", "gold.customer_360"):
            assert instance.get_latest_materialization_event(key(name)) is not None
        evaluations = [
            record.event_log_entry.dagster_event.event_specific_data
            for run in runs
            for record in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            ).records
        ]
    failed = [
        f"{e.asset_check_key.asset_key.path[-1]}:{e.asset_check_key.name}: {e.description}"
        for e in evaluations
        if not e.passed
    ]
    assert len(evaluations) > 100
    assert failed == [], "the sample data's usual dirt is within tolerance:\n" + "\n".join(failed)
    within = [e for e in evaluations if "within the tolerated" in (e.description or "")]
    assert within and all(
        e.metadata["failed_records"].value > 0 for e in within if "failed_records" in e.metadata
    )


def belong_to_the_workspace_code_location() -> None:
    """The jobs' Runs tabs list the runs, and the UI re-executes them as runs of the loaded job:
    same code location, repository and job snapshot."""
    (entry,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"] == {"module_name": DEFINITIONS_MODULE, "location_name": CODE_LOCATION}
    with dg.DagsterInstance.get() as instance, code_location(instance) as location:
        (repository,) = location.get_repositories().values()
        runs = instance.get_runs()
        assert {run.job_name for run in runs} == {job.name for job in REGISTRY.jobs()}
        for run in runs:
            origin = run.remote_job_origin
            assert origin is not None, "recorded with its code location"
            assert (origin.location_name, origin.repository_origin.repository_name) == (
                CODE_LOCATION,
                repository.name,
            )
            assert run.job_snapshot_id == repository.get_full_job(run.job_name).identifying_job_snapshot_id
        documented_and_traced(instance)


def documented_and_traced(instance: dg.DagsterInstance) -> None:
    """Every column of every table written has a description; every gold table's lineage covers
    every column it wrote."""
    undocumented, untraced = [], []
    for asset_key in instance.get_asset_keys():
        records = instance.fetch_materializations(asset_key, limit=1).records
        if not records:
            continue
        metadata = records[0].asset_materialization.metadata
        columns = [column for column in metadata["dagster/column_schema"].value.columns]
        undocumented += [f"{asset_key.path[-1]}.{c.name}" for c in columns if not c.description]
        if asset_key.path[0] == "gold":
            traced = set(metadata["dagster/column_lineage"].value.deps_by_column)
            untraced += [f"{asset_key.path[-1]}.{c.name}" for c in columns if c.name not in traced]
    assert undocumented == []
    assert untraced == []
