"""The package splits into the core a unit of work needs (it runs on a cluster) and the Dagster
orchestration: the core installs and runs a unit without Dagster, alone or launched through
Pipes by the Databricks runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster_tests.databricks_harness import databricks_definitions, databricks_env, fake_workspace
from lakehouse_dagster_tests.events import materializations

REPO = Path(__file__).parents[1]


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900, **kwargs)
    assert completed.returncode == 0, f"{command}\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}"
    return completed


@pytest.fixture(scope="module")
def core_python(tmp_path_factory) -> Path:
    """A fresh venv with the built wheel and its core extra, plus the embedded engine to run on."""
    scratch = tmp_path_factory.mktemp("core")
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(scratch / "dist"), str(REPO)]
    )
    (wheel,) = (scratch / "dist").glob("lakehouse_dagster-*.whl")
    venv.EnvBuilder(with_pip=True).create(scratch / "venv")
    python = scratch / "venv" / "bin" / "python"
    constraints = str(REPO / "constraints.txt")
    run([str(python), "-m", "pip", "install", "--quiet", "-c", constraints, f"{wheel}[core,local]"])
    return python


def test_the_core_installs_no_dagster_but_dagster_pipes(core_python: Path) -> None:
    installed = json.loads(run([str(core_python), "-m", "pip", "list", "--format", "json"]).stdout)
    names = {package["name"].lower() for package in installed}
    assert {"lakehouse_dagster", "pyarrow", "deltalake", "pyyaml", "pyspark", "pysail"} <= names
    assert {name for name in names if name.startswith("dagster")} == {"dagster-pipes"}


def test_a_unit_runs_from_the_core_install(core_python: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    generate_customers(root / "landing", rows=200, files=2, seed=4)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")},
        "LAKEHOUSE_DEPLOYMENT": "test",
        "LAKEHOUSE_ROOT": str(root),
    }
    completed = run(
        [str(core_python), "-m", "lakehouse_dagster.units", "bronze.customers", "--as-of-date", "2026-11-26"],
        env=env,
        cwd=tmp_path,  # not the repository: the installed package, not the source tree
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["error"] is None
    assert report["metadata"]["lakehouse/files_ingested"] == 2
    assert report["uri"] == f"{root}/bronze/customers"
    imported = run(
        [str(core_python), "-c", "import lakehouse_dagster.units.run, sys; print('dagster' in sys.modules)"],
        cwd=tmp_path,
    )
    assert imported.stdout.strip() == "False"


def test_the_wheels_pipes_entry_point_refuses_to_run_outside_pipes(core_python: Path, tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(core_python.parent / "lakehouse-pipes-unit")], capture_output=True, text=True, cwd=tmp_path
    )
    assert completed.returncode == 1
    assert "NotLaunchedByPipesError" in completed.stderr and "--dagster-pipes-context" in completed.stderr


def test_a_cluster_with_only_the_core_runs_a_unit_through_pipes(
    core_python: Path, tmp_path: Path, sail_url: str, monkeypatch
) -> None:
    """The Databricks runner here, its task in the core venv: no Dagster on the "cluster"."""
    landing = tmp_path / "landing"
    generate_customers(landing, rows=100, files=2, seed=6)
    with fake_workspace(
        tmp_path / "workspace", sail_url, python=str(core_python), pythonpath=()
    ) as workspace:
        env = databricks_env(workspace, tmp_path / "lake", landing)
        _, defs = databricks_definitions(env, "lakehouse_dagster.registry:REGISTRY", monkeypatch)
        result = defs.resolve_job_def("lakehouse_job").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            asset_selection=[dg.AssetKey(["bronze", "bronze.customers"])],
        )
        (run,) = workspace.runs.values()

    assert result.success
    assert run.states_seen[-1] == "TERMINATED/SUCCESS"
    (materialization,) = materializations(result, TableName("bronze", "customers"))
    assert materialization.metadata["lakehouse/files_ingested"].value == 2
