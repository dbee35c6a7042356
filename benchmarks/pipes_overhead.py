"""Overhead of a Dagster Pipes round trip per asset: the Databricks runner against the tests'
fake workspace, next to the in-process runner, on the same data and the same Sail server.

    .venv/bin/python benchmarks/pipes_overhead.py [--rows 20000] [--files 4]

Each runner materialises the customers slice (bronze, silver, gold) in one Dagster run, into
a fresh lake. A step's time is from its STEP_START to its STEP_SUCCESS in the event log. For
the Databricks runner, "task process" is the wall time of the task's own Python process on the
fake (start, imports, the unit, Pipes' closing flush); the rest of the step is the round trip:
submitting, putting the context on the volume, polling the run, reading the messages back,
cleaning up. Polling is measured twice: as the tests poll the fake (every 0.1 s, messages every
0.5 s) and with the production defaults (every 5 s, messages every 10 s while the run goes).

The fake starts no cluster: on Databricks a job cluster adds minutes, serverless tens of seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import dagster as dg
from harness import WORK, fresh

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' fake workspace

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.engine.sessions import EmbeddedSail
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster_tests.databricks_harness import databricks_env, fake_workspace

ASSETS = ["bronze/bronze.customers", "silver/silver.customers", "gold/gold.customer_segments"]
RUN_CONFIG = {"ops": {"silver__customers": {"config": {"as_of_date": "2026-11-26"}}}}


def step_seconds(defs: dg.Definitions) -> dict[str, float]:
    """Run the slice once; each asset's step time from the event log."""
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("lakehouse_job").execute_in_process(
        instance=instance,
        run_config=RUN_CONFIG,
        asset_selection=[dg.AssetKey.from_user_string(a) for a in ASSETS],
    )
    assert result.success
    started, seconds = {}, {}
    for record in instance.all_logs(result.run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = record.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            seconds[event.step_key.replace("__", "/")] = record.timestamp - started[event.step_key]
    return seconds


def in_process(root: Path, landing: Path, sail_url: str) -> dict[str, float]:
    layout = LakeLayout.local(str(fresh(root)), str(landing))
    return step_seconds(
        build_definitions(LakehouseSettings(Deployment.TEST, layout, EngineSettings(sail_url)))
    )


def through_pipes(
    root: Path, landing: Path, sail_url: str, poll: float, messages: float
) -> tuple[dict, list]:
    fresh(root)
    with fake_workspace(root / "workspace", sail_url) as workspace:
        env = databricks_env(workspace, root / "lake", landing)
        os.environ.update(env)  # the Databricks SDK reads the token from the environment
        settings = LakehouseSettings.from_env(env)
        quick = dataclasses.replace(
            settings.databricks, poll_interval_seconds=poll, messages_interval_seconds=messages
        )
        seconds = step_seconds(build_definitions(dataclasses.replace(settings, databricks=quick)))
        runs = sorted(workspace.runs.values(), key=lambda run: run.run_id)
    return seconds, [run.ended_at - run.started_at for run in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args()
    root = fresh(WORK / "pipes")
    landing = root / "landing"
    generate_customers(landing, rows=args.rows, files=args.files, seed=7)
    server = EmbeddedSail()
    sail_url = server.start()
    try:
        in_process(root / "warm-up", landing, sail_url)  # the engine's first queries are slower
        here = in_process(root / "here", landing, sail_url)
        fast, processes = through_pipes(root / "fast", landing, sail_url, poll=0.1, messages=0.5)
        default, _ = through_pipes(root / "default", landing, sail_url, poll=5.0, messages=10.0)
    finally:
        server.stop()
    print(f"customers slice, {args.rows} rows in {args.files} files; seconds per asset step")
    header = (
        "asset",
        "in process",
        "Pipes, fast polls",
        "task process",
        "round trip",
        "Pipes, default polls",
    )
    print(f"{header[0]:24}" + "".join(f"{h:>22}" for h in header[1:]))
    for asset, process in zip(ASSETS, processes, strict=True):
        row = (here[asset], fast[asset], process, fast[asset] - process, default[asset])
        print(f"{asset:24}" + "".join(f"{value:22.2f}" for value in row))
    totals = [sum(here.values()), sum(fast.values()), sum(processes), sum(fast.values()) - sum(processes)]
    print(f"{'total':24}" + "".join(f"{value:22.2f}" for value in (*totals, sum(default.values()))))


if __name__ == "__main__":
    main()
