"""`make run`: sample data is landed once, the run is recorded in the project's Dagster instance."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch, sail_url, warehouse_url) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((Path(__file__).parents[1] / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LAKEHOUSE_DEPLOYMENT", "local")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", sail_url)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setattr(cli, "SAMPLE_ROWS", 400)
    monkeypatch.setattr(cli, "SAMPLE_RETAIL_DAYS", 3)
    return tmp_path


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
        for key in (["gold", "customer_segments"], ["gold", "daily_sales"], ["gold", "customer_360"]):
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None
    customer_360 = second.split("gold.customer_360", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"\d\.\d{2}\b", customer_360), "money is printed to the cent"
    assert not re.search(r"\d\.\d{3}\b", customer_360), "not as a double (printed to 3 places)"
