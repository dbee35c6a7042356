"""Benchmark of the customers slice: wall time and peak memory per asset, and the cost of an
incremental run as the ingestion history grows.

    .venv/bin/python benchmarks/customers_slice.py [--rows 1000000] [--files 20]

Each asset runs as its own process (``python -m lakehouse_dagster.units``) with an embedded
Sail engine, so its peak RSS is the asset's own, engine included. Wall time per process
includes interpreter start, imports and engine start; "unit" is the same work timed inside
one long-lived process with one engine, as Dagster's in-process executor runs it.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import date

from harness import WORK, fresh, print_measurements, run_process, run_unit_process

from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster.units.run import run_unit

TABLES = ("bronze.customers", "silver.customers", "gold.customer_segments")
AS_OF = "2026-11-26"


def execute(table: str, tables: DeltaTables, log: logging.Logger | None = None) -> UnitResult:
    request = UnitRequest(table, as_of_date=date.fromisoformat(AS_OF))
    result = run_unit(request, REGISTRY.table(table), tables, Thresholds.load(), log)
    if result.error is not None:
        raise SystemExit(f"{table} failed: {result.error.message}")
    return result


def slice_benchmark(rows: int, files: int) -> None:
    root = fresh(WORK / "slice")
    generator = run_process(
        "sample data (customers)",
        [
            "-m",
            "lakehouse_dagster.sample_data",
            "customers",
            "--out",
            str(root / "landing"),
            "--rows",
            str(rows),
            "--files",
            str(files),
            "--seed",
            "7",
        ],
    )
    print(f"{rows:,} rows in {files} files\n")
    print_measurements(
        [generator, *(run_unit_process(table, root, "--as-of-date", AS_OF) for table in TABLES)]
    )

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
    args = parser.parse_args()
    slice_benchmark(args.rows, args.files)
    incremental_benchmark(tuple(args.history), args.rows_per_file)


if __name__ == "__main__":
    main()
