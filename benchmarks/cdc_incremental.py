"""Benchmark: the cost of applying one more day of change data as the history grows.

    .venv/bin/python benchmarks/cdc_incremental.py [--history 30 180 365] [--orders-per-day 1000]

One simulation of the shop covers the longest history plus a day. For each history length H,
a fresh lake receives every DMS file delivered in the first H days (ingested and applied, not
timed), then the files of day H + 1 (ingested, not timed); the applies of the current state
(``silver.sales_orders``, SCD1) and of the history (``silver.sales_customers_history``, SCD2)
are timed, with the bronze rows each one read. The cost should not grow with H.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import date, timedelta
from pathlib import Path

from harness import WORK, fresh

from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster.units.run import run_unit

BRONZE = ("bronze.sales_customers", "bronze.sales_orders")
TIMED = ("silver.sales_orders", "silver.sales_customers_history")


def run(tables: DeltaTables, table: str) -> dict:
    request = UnitRequest(table, as_of_date=date(2026, 11, 26))
    result = run_unit(request, REGISTRY.table(table), tables, Thresholds.load(), logging.getLogger("bench"))
    if result.error is not None:
        raise SystemExit(f"{table}: {result.error.message}")
    return result.metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, nargs="+", default=[30, 180, 365])
    parser.add_argument("--orders-per-day", type=int, default=1_000)
    args = parser.parse_args()
    days = max(args.history) + 1
    started = time.perf_counter()
    simulation = simulate_retail(
        days=days, seed=7, customers=20_000, products=500, orders_per_day=args.orders_per_day
    )
    elapsed = time.perf_counter() - started
    print(f"simulated {days} days in {elapsed:.0f} s: {simulation.stats['changes']:,} changes\n")
    print(f"{'history days':>12} {'table':32} {'apply s':>8} {'changes read':>13}")
    with spark_session(EngineSettings()) as spark:
        for history in args.history:
            root = fresh(WORK / f"cdc_{history}")
            tables = DeltaTables(spark, LakeLayout.local(str(root)))
            landing = Path(tables.layout.landing)
            write_landing(simulation, landing, delivered_before=simulation.start + timedelta(days=history))
            for table in (*BRONZE, *TIMED):
                run(tables, table)
            write_landing(
                simulation, landing, delivered_before=simulation.start + timedelta(days=history + 1)
            )
            for table in BRONZE:
                run(tables, table)
            for table in TIMED:
                began = time.perf_counter()
                metadata = run(tables, table)
                elapsed = time.perf_counter() - began
                print(f"{history:12} {table:32} {elapsed:8.2f} {metadata['lakehouse/changes_read']:13,}")


if __name__ == "__main__":
    main()
