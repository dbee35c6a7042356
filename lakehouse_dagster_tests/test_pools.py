"""The engine limit holds for every launch path: it is a pool of the assets, not a run tag.

Two runs launched at once on the local instance (``dagster.yaml``), one from the asset
graph (an implicit asset job, no tags) and one of a declared job, never compute at the same
time: their steps wait for the one slot of ``lakehouse_engine``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

from lakehouse_dagster.catalog.glue import GlueCatalog
from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.defs.assets import table_asset
from lakehouse_dagster.defs.pools import ENGINE_POOL, table_pool
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.runners.base import UnitRunner
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster_tests.events import UnpublishedMetrics

LOCAL_INSTANCE = Path(__file__).parents[1] / "dagster.yaml"
FIRST, SECOND = TableName("silver", "first"), TableName("silver", "second")


class TimedRunner(UnitRunner):
    """A unit that takes a while, and notes when it ran."""

    log_file: str
    seconds: float = 2.0

    def run(self, context, table, request) -> UnitResult:
        started = time.time()
        time.sleep(self.seconds)
        with open(self.log_file, "a") as log:
            log.write(json.dumps([str(table.name), started, time.time()]) + "\n")
        return UnitResult(str(table.name))


DOMAIN = Domain("d", "d", tuple(Table(name, str(name), build=lambda c: None) for name in (FIRST, SECOND)))


def definitions(log_file: str) -> tuple[dict[TableName, dg.AssetsDefinition], dg.Definitions]:
    """The two tables' assets wired as locally (``table_pool`` of the local deployment)."""
    local = LakehouseSettings.from_env({"LAKEHOUSE_ROOT": "/tmp/lake"})
    assets = {
        table.name: table_asset(DOMAIN, table, None, None, pool=table_pool(local, table))
        for table in DOMAIN.tables
    }
    job = dg.define_asset_job("second_job", selection=[dg.AssetKey(SECOND.key_path)])
    resources = {
        "runner": TimedRunner(log_file=log_file),
        "catalog": GlueCatalog(),
        "metrics": UnpublishedMetrics(),
    }
    return assets, dg.Definitions(assets=list(assets.values()), jobs=[job], resources=resources)


def launch(path: str, home: str, log_file: str, ready: str) -> None:
    """One run, in a process of its own, once both processes are ready: from the asset graph (an
    implicit asset job, no tags) or of a declared job."""
    assets, defs = definitions(log_file)
    Path(ready, path).touch()
    while len(list(Path(ready).iterdir())) < 2:
        time.sleep(0.05)
    if path == "job":
        # Dagster's claim on SQLite takes no row lock: two claims in the same milliseconds can
        # both get the slot (README, "Table maintenance"). The job's run starts just after.
        time.sleep(0.5)
    with dg.DagsterInstance.from_config(home) as instance:
        if path == "graph":
            result = dg.materialize([assets[FIRST]], instance=instance, resources=defs.resources)
        else:
            result = defs.resolve_job_def("second_job").execute_in_process(instance=instance)
    sys.exit(0 if result.success else 1)


def test_locally_every_table_step_is_in_the_engine_pool_and_elsewhere_in_its_own() -> None:
    local = LakehouseSettings.from_env({"LAKEHOUSE_ROOT": "/tmp/lake"})
    shared = LakehouseSettings.from_env({"LAKEHOUSE_ROOT": "/tmp/lake", "LAKEHOUSE_SPARK_REMOTE": "sc://x:1"})
    for table in REGISTRY.tables:
        assert table_pool(local, table) == ENGINE_POOL
        assert table_pool(shared, table) == str(table.name)


def test_two_runs_from_two_launch_paths_take_turns_on_the_engine(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(LOCAL_INSTANCE.read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's storage, here and in both runs
    with dg.DagsterInstance.from_config(str(home)):
        pass  # creates the storage once, before two processes share it
    log_file, ready = tmp_path / "units.jsonl", tmp_path / "ready"
    ready.mkdir()
    logs = [tmp_path / f"{path}.log" for path in ("graph", "job")]

    def arguments(path: str) -> list[str]:
        return [path, str(home), str(log_file), str(ready)]

    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from {__name__} import launch; launch(*{arguments(log.stem)!r})",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        for log in logs
    ]
    try:
        codes = [process.wait(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)

    first, second = sorted(
        (json.loads(line) for line in log_file.read_text().splitlines()), key=lambda unit: unit[1]
    )
    assert {first[0], second[0]} == {str(FIRST), str(SECOND)}
    assert second[1] >= first[2], (
        f"the second unit started {timedelta(seconds=first[2] - second[1])} before the first ended"
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert sorted(run.job_name for run in runs) == ["__ephemeral_asset_job__", "second_job"]
        assert all(not run.tags for run in runs), "no run tag is needed for the limit"
        waited = [
            entry.message
            for run in runs
            for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if ENGINE_POOL in (entry.message or "")
        ]
    assert any("blocked" in message for message in waited), "one run waited for the engine's slot"
