"""`make run`: sample data is landed once, the runs are recorded in the project's Dagster instance
as runs of the workspace's code location, the sample data's usual dirt leaves every check green,
and every column written is documented (gold's traced to silver)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._utils.hosted_user_process import recon_job_from_origin

from lakehouse_dagster import cli
from lakehouse_dagster.defs.pools import ENGINE_POOL
from lakehouse_dagster.domains.sales.tables import DAILY_SALES, ORDER_DATES
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.launch import (
    CODE_LOCATION,
    DEFINITIONS_MODULE,
    HOST_TAG,
    PID_TAG,
    code_location,
    create_run,
    release_dead_runs,
)
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.serving.local_server import free_port
from lakehouse_dagster_tests.browser import ARTIFACTS, CHROMIUM_FLAGS

ROOT = Path(__file__).parents[1]


@dataclass
class MadeProject:
    """A project after ``make run`` twice: its folder and what each run printed."""

    root: Path
    first: str
    second: str


def make_run() -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert cli.main(["run"]) == 0
    return output.getvalue()


@pytest.fixture(scope="module")
def project(tmp_path_factory, sail_url, postgres) -> Iterator[MadeProject]:
    """``make run`` twice in a project of its own, with a small sample; the environment stays set
    for the module's tests (the UI test starts ``dagster dev`` over the same instance)."""
    root = tmp_path_factory.mktemp("project")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        patch.setenv("LAKEHOUSE_DEPLOYMENT", "local")
        patch.setenv("LAKEHOUSE_ROOT", str(root / "lake"))
        patch.setenv("LAKEHOUSE_SPARK_REMOTE", sail_url)
        patch.setenv("LAKEHOUSE_WAREHOUSE_URL", postgres.new())
        patch.setenv("LAKEHOUSE_MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
        patch.setattr(cli, "SAMPLE_ROWS", 400)
        patch.setattr(cli, "SAMPLE_RETAIL_DAYS", 3)
        first = make_run()
        yield MadeProject(root, first, make_run())


def key(name: str) -> dg.AssetKey:
    return dg.AssetKey(TableName.parse(name).key_path)


def test_check_refuses_bad_settings_before_anything_starts_naming_the_variable(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "a lake"))
    assert cli.main(["check"]) == 2
    assert "LAKEHOUSE_ROOT=" in capsys.readouterr().err

    folder = tmp_path / "ünï"  # the default root under a folder the engine cannot write to
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("LAKEHOUSE_ROOT")
    assert cli.main(["check"]) == 2
    error = capsys.readouterr().err
    assert "LAKEHOUSE_ROOT is unset: its default is ./.lakehouse in the folder" in error and "ünï" in error

    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
    assert cli.main(["check"]) == 0
    assert str(tmp_path / "lake") in capsys.readouterr().out


def test_make_run_lands_sample_data_records_runs_and_prints_gold(project: MadeProject) -> None:
    first, second = project.first, project.second
    landed = sorted((project.root / "lake" / "landing" / "customers").glob("*.csv"))
    assert len(landed) == cli.SAMPLE_FILES
    assert list((project.root / "lake" / "landing" / "dms" / "sales" / "orders").glob("LOAD*.csv"))
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
    # Three days of orders train no churn model (it needs two 60-day horizons of history): the
    # churn chain's two warnings say so, and nothing else fails.
    untrained = {"ml.churn_training_set:enough_history", "gold.customer_churn_scores:every_customer_scored"}
    checks = [(f"{e.asset_check_key.asset_key.path[-1]}:{e.asset_check_key.name}", e) for e in evaluations]
    assert {name for name, e in checks if not e.passed and name in untrained} == untrained
    failed = [f"{name}: {e.description}" for name, e in checks if not e.passed and name not in untrained]
    assert len(evaluations) > 100
    assert failed == [], "the sample data's usual dirt is within tolerance:\n" + "\n".join(failed)
    within = [e for e in evaluations if "within the tolerated" in (e.description or "")]
    assert within and all(
        e.metadata["failed_records"].value > 0 for e in within if "failed_records" in e.metadata
    )
    customer_360 = second.split("gold.customer_360 (first rows):", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"\d\.\d{2}\b", customer_360), "money is printed to the cent"
    assert not re.search(r"\d\.\d{3}\b", customer_360), "not as a double (printed to 3 places)"


def test_the_runs_belong_to_the_workspace_code_location_and_every_column_is_documented(
    project: MadeProject,
) -> None:
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


# The UI over that instance, in a real browser ----------------------------------------------------

#: What a page shows when something went wrong loading it (Dagster's own wording).
ERROR_TEXTS = (
    "Unexpected GraphQL error",
    "An unexpected error occurred",
    "An error occurred",
    "failed to load",
    "Error loading",
    "PythonError",
)
UI_ARTIFACTS = ARTIFACTS / "ui"
DAGSTER = str(Path(sys.executable).parent / "dagster")


INSTANCE_TEMPLATE_NOTE = "Found a dagster instance configuration value (dagster.yaml) in the current folder"


def dev_warnings_filter() -> str:
    """The warnings filter ``make dev`` sets (from the Makefile)."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("DEV_WARNINGS :="):
            return line.split(":=", 1)[1].strip()
    raise AssertionError("the Makefile sets no DEV_WARNINGS")


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


def wait_until_loaded(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    while True:
        try:
            entries = graphql(url, query)["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"dagster dev did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def dagster_dev(project: MadeProject) -> Iterator[tuple[str, Path]]:
    """``make dev``: ``dagster dev`` started in the repository's folder, as the Makefile starts it,
    on a free port; its terminal output is kept."""
    UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = UI_ARTIFACTS / "dagster-dev.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONWARNINGS": dev_warnings_filter()},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its webserver, daemon and code servers go with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_loaded(url, process, log)
        graphql(url, "mutation { setNuxSeen }")  # no first-visit newsletter dialog over the pages
        yield url, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def open_page(page, url: str, path: str, ready: str, shot: str) -> str:
    """The page's text once ``ready`` shows, with no error on it; a screenshot is kept."""
    page.goto(url + path, timeout=60_000)
    try:
        page.get_by_text(ready, exact=False).first.wait_for(timeout=30_000)
    except Exception:
        page.screenshot(path=str(UI_ARTIFACTS / f"{shot}-failed.png"))
        raise
    page.wait_for_timeout(1_500)  # let the live data arrive
    page.screenshot(path=str(UI_ARTIFACTS / f"{shot}.png"))
    text = page.inner_text("body")
    errors = [error for error in ERROR_TEXTS if error.lower() in text.lower()]
    assert errors == [], f"{path}: {errors}"
    return text


def test_the_ui_shows_unique_names_checks_partitions_and_automation_without_errors(
    project: MadeProject, dagster_dev: tuple[str, Path], chromium: str
) -> None:
    from playwright.sync_api import sync_playwright

    url, log = dagster_dev
    # The one expected warning: the instance template ./dagster.yaml (fixed by the project's
    # layout) is not the instance's own file, which lives in DAGSTER_HOME.
    terminal = "\n".join(line for line in log.read_text().splitlines() if INSTANCE_TEMPLATE_NOTE not in line)
    assert "warning" not in terminal.lower(), terminal[-3000:]

    # Re-execute works without a warning: each run's code location and job snapshot are the loaded job's.
    runs = graphql(
        url,
        "{ runsOrError { ... on Runs { results { pipelineName pipelineSnapshotId "
        "repositoryOrigin { repositoryLocationName repositoryName } } } } }",
    )["runsOrError"]["results"]
    assert len(runs) == 4
    for run in runs:
        origin = run["repositoryOrigin"]
        loaded = graphql(
            url,
            "{ pipelineOrError(params: {repositoryLocationName: "
            f'"{origin["repositoryLocationName"]}", repositoryName: "{origin["repositoryName"]}", '
            f'pipelineName: "{run["pipelineName"]}"}}) {{ ... on Pipeline {{ pipelineSnapshotId }} }} }}',
        )["pipelineOrError"]
        assert (origin["repositoryLocationName"], loaded["pipelineSnapshotId"]) == (
            CODE_LOCATION,
            run["pipelineSnapshotId"],
        )

    days = order_days(project)
    partitions = (date.today() - ORDER_DATES.start).days  # up to yesterday (UTC)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            graph = open_page(
                page, url, f"/locations/{CODE_LOCATION}/asset-groups/customers", "silver.customers", "graph"
            )
            for name in ("bronze.customers", "silver.customers", "gold.customer_segments"):
                assert name in graph
            for name in ("quarantine.customers", "serving.customer_segments"):
                assert name in graph
            page.set_viewport_size({"width": 2000, "height": 6000})  # the catalog renders the rows in view
            catalog = open_page(page, url, "/assets", "bronze / bronze.customers", "catalog")
            # The partition counts arrive after the rows (seconds later on a loaded machine).
            page.get_by_text(f"{partitions} partitions", exact=False).first.wait_for(timeout=30_000)
            catalog = page.inner_text("body")
            page.set_viewport_size({"width": 1600, "height": 1000})
            for table in REGISTRY.tables:
                assert f"{table.name.layer} / {table.name}" in catalog
            assert "quarantine / quarantine.customers" in catalog and "ops / ops.data_quality" in catalog
            assert f"{partitions} partitions" in catalog

            daily_sales = next(t for t in REGISTRY.tables if t.name == DAILY_SALES)
            asset = open_page(page, url, "/assets/gold/gold.daily_sales", "Columns", "asset")
            for column in ("orders", "revenue", "cancelled_share"):
                assert daily_sales.column_docs[column] in asset
            shown = open_page(
                page, url, "/assets/gold/gold.daily_sales?view=partitions", "Materialized (", "partitions"
            )
            assert f"Materialized ({len(days)})" in shown and f"Missing ({partitions - len(days)})" in shown

            checks = open_page(page, url, "/assets/silver/silver.customers?view=checks", "Checks (", "checks")
            silver = next(t for t in REGISTRY.tables if t.name == TableName("silver", "customers"))
            names = [spec.name for spec in silver.check_specs()] + ["column_schema_change"]
            assert f"Checks ({len(names)})" in checks and all(name in checks for name in names)
            assert checks.count("Succeeded") >= len(names) and "Failed" not in checks
            # A drop within its tolerance: passed, with its counts saying what they mean.
            page.get_by_text("customer_id_present", exact=True).first.click()
            page.get_by_text("within the tolerated").first.wait_for(timeout=30_000)
            page.screenshot(path=str(UI_ARTIFACTS / "check.png"))
            check = page.inner_text("body")
            assert (
                "rows failed customer_id IS NOT NULL, within the tolerated 3% (dropped to quarantine)"
                in check
            )
            assert "Passed" in check

            quarantine = open_page(
                page, url, "/assets/quarantine/quarantine.customers", "Row count", "quarantine"
            )
            assert "customer_id_present" in quarantine
            automation = open_page(page, url, "/automation", "refresh_touched_order_dates", "automation")
            assert "lakehouse_job_schedule" in automation and "sales_facts_job_schedule" in automation
            job_runs = open_page(
                page, url, f"/locations/{CODE_LOCATION}/jobs/lakehouse_job/runs", "Success", "job-runs"
            )
            assert job_runs.count("Success") >= 2, "both make runs are the job's runs"
        finally:
            browser.close()


def order_days(project: MadeProject) -> list[str]:
    """The order dates gold.daily_sales holds (read with deltalake, not through Dagster)."""
    import deltalake
    import pyarrow as pa

    table = deltalake.DeltaTable(str(project.root / "lake" / "gold" / "daily_sales"))
    dates = pa.table(
        deltalake.QueryBuilder().register("t", table).execute("SELECT DISTINCT order_date FROM t").read_all()
    ).column("order_date")
    return sorted(str(day) for day in dates.to_pylist())


def test_a_second_load_in_one_process_runs_with_the_environment_as_it_is_now(tmp_path, monkeypatch) -> None:
    """Dagster keeps the last reconstructed job per process by its origin, which the settings do
    not change: ``make run`` in a process that loaded the code location before with another lake
    root (a test, a notebook) ran with the first root's resources."""
    monkeypatch.setenv("LAKEHOUSE_DEPLOYMENT", "test")
    roots = []
    for name in ("first", "second"):
        monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / name))
        with dg.DagsterInstance.ephemeral() as instance, code_location(instance) as location:
            run = create_run(instance, location, REGISTRY.default_job.name)
            job = recon_job_from_origin(run.job_code_origin).get_definition()
            roots.append(job.resource_defs["lake"].config_schema.default_value["root"])
    assert roots == [str(tmp_path / "first"), str(tmp_path / "second")]


def test_a_run_whose_process_died_is_failed_and_its_pool_slot_released(tmp_path, monkeypatch) -> None:
    """``make run`` killed (SIGKILL) left its run STARTED, holding the engine's one slot: the next
    ``make run`` waited for it for ever, printing nothing. A live process's run is left alone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the project's instance storage is under it
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = {}
        for name, pid in (("dead", dead.pid), ("alive", os.getpid())):
            run = DagsterRun(
                job_name=REGISTRY.default_job.name,
                status=DagsterRunStatus.STARTED,
                tags={HOST_TAG: socket.gethostname(), PID_TAG: str(pid)},
            )
            runs[name] = instance.add_run(run).run_id
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(ENGINE_POOL)  # as a step does first
        assert storage.claim_concurrency_slot(ENGINE_POOL, runs["dead"], "silver__customers").is_claimed

        released = release_dead_runs(instance)

        assert len(released) == 1 and runs["dead"] in released[0]
        assert instance.get_run_by_id(runs["dead"]).status is DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(runs["alive"]).status is DagsterRunStatus.STARTED
        assert storage.claim_concurrency_slot(ENGINE_POOL, runs["alive"], "silver__orders").is_claimed
