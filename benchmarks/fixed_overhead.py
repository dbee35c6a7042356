"""Benchmark: the fixed cost of materialising one tiny asset through ``dagster asset materialize``,
broken down into what the process spends before, during and after its one step.

    .venv/bin/python benchmarks/fixed_overhead.py [--repeat 3]

The asset is ``bronze.customers`` over one landed file of three rows, so nearly all of the time
is overhead. Each part is timed in a process of its own, best of ``--repeat``:

- ``python -c pass``: the interpreter;
- ``import lakehouse_dagster.definitions``: the imports of the code location;
- ``defs``: the imports, then building the ``Definitions`` (the asset graph of the registry);
- the embedded engine: importing PySpark's Connect client, starting Sail and running one query;
- ``dagster asset materialize``: all of it, with the run's own timestamps from the event log
  (process start to run start: the CLI, the imports, loading the definitions and the instance;
  the step; run end to process exit).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from harness import WORK, fresh, materialize, run_process

SELECT = "bronze/bronze.customers"
TINY_FILE = "customer_id,first_name,last_name,email,country,signup_date,last_activity\n" + "".join(
    f"{i},Ann,Lee,ann{i}@example.com,US,2026-01-0{i},2026-11-0{i}\n" for i in range(1, 4)
)


def best(label: str, arguments: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    return min(run_process(label, arguments, env).wall_seconds for _ in range(repeat))


ENGINE_START = (
    "from lakehouse_dagster.engine.sessions import EmbeddedSail, connect\n"
    "server = EmbeddedSail()\n"
    "session = connect(server.start())\n"
    "session.sql('SELECT 1').collect()\n"
    "session.stop()\n"
    "server.stop()\n"
)


def run_timeline(home: Path) -> dict[str, float]:
    from dagster import DagsterEventType, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)  # the project's instance storage is under it
    instance = DagsterInstance.from_config(str(home))
    (run,) = instance.get_runs(limit=1)
    stamps: dict[str, float] = {}
    for record in instance.all_logs(run.run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value not in stamps:
            stamps[event.event_type_value] = record.timestamp
    return {
        "run": stamps[DagsterEventType.RUN_SUCCESS.value] - stamps[DagsterEventType.RUN_START.value],
        "step": stamps[DagsterEventType.STEP_SUCCESS.value] - stamps[DagsterEventType.STEP_START.value],
        "run_start": stamps[DagsterEventType.RUN_START.value],
        "run_end": stamps[DagsterEventType.RUN_SUCCESS.value],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = args.repeat

    interpreter = best("python -c pass", ["-c", "pass"], repeat)
    imports = best("import definitions", ["-c", "import lakehouse_dagster.definitions"], repeat)
    definitions = best(
        "build definitions", ["-c", "from lakehouse_dagster.definitions import defs; defs()"], repeat
    )
    engine = best("engine start", ["-c", ENGINE_START], repeat)

    runs = []
    for _ in range(repeat):
        root = fresh(WORK / "fixed_overhead")
        (root / "landing" / "customers").mkdir(parents=True)
        (root / "landing" / "customers" / "tiny.csv").write_text(TINY_FILE)
        began = time.time()
        measurement = materialize("dagster asset materialize (1 tiny asset)", root, SELECT)
        ended = began + measurement.wall_seconds
        timeline = run_timeline(root / "dagster_home")
        runs.append((measurement.wall_seconds, timeline, began, ended, measurement.peak_rss_mib))
    wall, timeline, began, ended, rss = min(runs, key=lambda run: run[0])

    print(f"best of {repeat}, seconds:")
    print(f"  python -c pass                                   {interpreter:6.2f}")
    print(f"  import lakehouse_dagster.definitions (process)   {imports:6.2f}")
    print(f"  ... and build the Definitions (process)          {definitions:6.2f}")
    print(f"  start the embedded engine, one query (process)   {engine:6.2f}")
    print(f"  dagster asset materialize, whole process         {wall:6.2f}  (peak RSS {rss:,.0f} MiB)")
    print(f"    launch to RUN_START (CLI, imports, defs, instance) {timeline['run_start'] - began:6.2f}")
    print(f"    RUN_START to RUN_SUCCESS                           {timeline['run']:6.2f}")
    print(f"      of which the one step                            {timeline['step']:6.2f}")
    print(f"    RUN_SUCCESS to exit                                {ended - timeline['run_end']:6.2f}")


if __name__ == "__main__":
    main()
