"""Benchmark of the customers slice against a hand-written build, and the cost of an incremental
run as the ingestion history grows.

    .venv/bin/python benchmarks/customers_slice.py [--rows 1000000] [--files 20] [--per-asset]

The project builds the three customers assets with ``dagster asset materialize`` (in-process
executor, embedded Sail), as a user runs them; the reference
(``reference/customers_reference.py``: pyarrow, Polars, deltalake) builds the same tables from
the same landing files in the same invocation. Each runs as its own process: wall time and peak
RSS (the embedded engine runs inside the project's process), and the ratio.
``--per-asset`` also runs each asset's unit in a process of its own
(``python -m lakehouse_dagster.units``) for its own wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import date
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.compute
from harness import WORK, fresh, materialize, print_measurements, run_process, run_reference, run_unit_process

from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster.units.run import run_unit

TABLES = ("bronze.customers", "silver.customers", "gold.customer_segments")
SELECT = ",".join("/".join(TableName.parse(table).key_path) for table in TABLES)
AS_OF = "2026-11-26"


def execute(table: str, tables: DeltaTables, log: logging.Logger | None = None) -> UnitResult:
    request = UnitRequest(table, as_of_date=date.fromisoformat(AS_OF))
    result = run_unit(request, REGISTRY.table(table), tables, Thresholds.load(), log)
    if result.error is not None:
        raise SystemExit(f"{table} failed: {result.error.message}")
    return result


def rows(lake: Path, layer: str, table: str) -> int:
    actions = pa.table(deltalake.DeltaTable(str(lake / layer / table)).get_add_actions(flatten=True))
    return pa.compute.sum(actions["num_records"]).as_py()


def landed_sample(row_count: int, files: int) -> tuple[Path, str]:
    """The sample landing of these parameters (seed 7), generated once and kept under
    ``.work/samples``: generating 10M rows takes minutes, and the same seed gives the same files."""
    landing = WORK / "samples" / f"customers_{row_count}_{files}_seed7"
    complete = landing / ".complete"  # hidden: never ingested
    if complete.exists():
        return landing, "reused"
    fresh(landing)
    arguments = ["--out", str(landing), "--rows", str(row_count), "--files", str(files), "--seed", "7"]
    generator = run_process(
        "sample data (customers)", ["-m", "lakehouse_dagster.sample_data", "customers", *arguments]
    )
    complete.touch()
    return landing, f"generated in {generator.wall_seconds:.1f} s"


def slice_benchmark(row_count: int, files: int, per_asset: bool, with_reference: bool = True) -> None:
    root = fresh(WORK / "slice")
    reference_lake = fresh(WORK / "slice_reference")
    landing, origin = landed_sample(row_count, files)
    (root / "landing").symlink_to(landing)
    print(f"{row_count:,} rows in {files} files ({origin})\n")
    project = materialize("project: dagster asset materialize", root, SELECT, LAKEHOUSE_AS_OF_DATE=AS_OF)
    if not with_reference:
        print_measurements([project])
        for layer, table in (("bronze", "customers"), ("silver", "customers"), ("gold", "customer_segments")):
            print(f"rows {layer}.{table}: project {rows(root, layer, table):,}")
        return
    reference = run_reference(
        "reference: pyarrow + Polars + deltalake",
        "customers_reference.py",
        str(root / "landing"),
        str(reference_lake),
        AS_OF,
    )
    print_measurements([project, reference])
    print(
        f"ratio project / reference: wall {project.wall_seconds / reference.wall_seconds:.2f}x, "
        f"peak RSS {project.peak_rss_mib / reference.peak_rss_mib:.2f}x"
    )
    for layer, table in (("bronze", "customers"), ("silver", "customers"), ("gold", "customer_segments")):
        print(
            f"rows {layer}.{table}: project {rows(root, layer, table):,}, "
            f"reference {rows(reference_lake, layer, table):,}"
        )

    if per_asset:
        print("\neach asset's unit in its own process, on a fresh lake:")
        lake = fresh(WORK / "slice_units")
        (lake / "landing").symlink_to(root / "landing")
        print_measurements([run_unit_process(table, lake, "--as-of-date", AS_OF) for table in TABLES])

    print("\nsecond run, one engine in one process (as the in-process executor runs it):")
    print(f"{'asset':26} {'unit s':>8}")
    layout = LakeLayout.local(str(root))
    with spark_session(EngineSettings()) as spark:
        for table in TABLES:
            started = time.perf_counter()
            execute(table, DeltaTables(spark, layout))
            print(f"{table:26} {time.perf_counter() - started:8.2f}")


def incremental_benchmark(history_steps: tuple[int, ...], rows_per_file: int) -> None:
    root = fresh(WORK / "incremental")
    layout = LakeLayout.local(str(root))
    landing = root / "landing"
    log = logging.getLogger("benchmark")
    print(f"\nincremental bronze run that adds 1 file of {rows_per_file} rows, by files already ingested:")
    print(f"{'files ingested':>15} {'bronze unit s':>14} {'files in ledger':>16}")
    landed = 0
    with spark_session(EngineSettings()) as spark:
        for history in history_steps:
            generate_customers(
                landing,
                rows=rows_per_file * (history - landed),
                files=history - landed,
                seed=history,
                start_index=landed + 1,
            )
            landed = history
            execute("bronze.customers", DeltaTables(spark, layout), log)
            generate_customers(
                landing, rows=rows_per_file, files=1, seed=10_000 + history, start_index=landed + 1
            )
            landed += 1
            started = time.perf_counter()
            result = execute("bronze.customers", DeltaTables(spark, layout), log)
            elapsed = time.perf_counter() - started
            assert result.metadata["lakehouse/files_ingested"] == 1
            print(f"{history:15} {elapsed:14.3f} {landed:16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--history", type=int, nargs="+", default=[100, 200, 400, 800])
    parser.add_argument("--rows-per-file", type=int, default=500)
    parser.add_argument("--per-asset", action="store_true", help="also each asset's unit in its own process")
    parser.add_argument("--no-incremental", action="store_true")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="the project only (the reference holds every row in memory: about 11 GiB per 10M rows)",
    )
    args = parser.parse_args()
    slice_benchmark(args.rows, args.files, args.per_asset, with_reference=not args.no_reference)
    if args.no_incremental:
        return
    incremental_benchmark(tuple(args.history), args.rows_per_file)


if __name__ == "__main__":
    main()
