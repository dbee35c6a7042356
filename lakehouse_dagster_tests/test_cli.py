"""`make run`: sample data is landed once, the run is recorded in the project's Dagster instance."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch, sail_url) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((Path(__file__).parents[1] / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LAKEHOUSE_DEPLOYMENT", "local")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", sail_url)
    monkeypatch.setattr(cli, "SAMPLE_ROWS", 400)
    return tmp_path


def test_make_run_lands_sample_data_records_runs_and_prints_gold(project: Path, capsys) -> None:
    assert cli.main(["run"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["run"]) == 0
    second = capsys.readouterr().out

    landed = sorted((project / "lake" / "landing" / "customers").glob("*.csv"))
    assert len(landed) == cli.SAMPLE_FILES
    assert "landing zone was empty" in first and "landing zone was empty" not in second
    assert "gold.customer_segments" in second and "SUCCESS" in second
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
        assert (
            instance.get_latest_materialization_event(dg.AssetKey(["gold", "customer_segments"])) is not None
        )
