"""Benchmark of serving loads into PostgreSQL: 1M gold-like rows, a full reload against one day.

    .venv/bin/python benchmarks/warehouse_load.py [--rows 1000000] [--days 100]

A daily-sales-like Delta table (dates, text, integers, NUMERIC money, a double) is written with
deltalake, partitioned by day; a project-local PostgreSQL 15 server is started in
``benchmarks/.work`` with its default durability (fsync on, as ``make warehouse``). Timed, each
the median of three: the first load (the table is created), a reload of every day (one range,
one transaction), a reload of one day, and the same rows served unpartitioned (staged and
swapped whole).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

import deltalake
import numpy as np
import pyarrow as pa
from harness import WORK, fresh

from lakehouse_dagster.lake.snapshots import LakeSnapshot
from lakehouse_dagster.serving.local_server import LocalPostgres
from lakehouse_dagster.serving.postgres import PostgresWarehouse
from lakehouse_dagster.serving.spec import DateRange, ServedTable

FIRST_DAY = date(2026, 6, 1)
CATEGORIES = np.array(["apparel", "books", "electronics", "garden", "grocery", "home", "sports", "toys"])
CURRENCIES = np.array(["EUR", "GBP", "USD"])


def gold_like(rows: int, days: int) -> pa.Table:
    rng = np.random.default_rng(7)
    index = np.arange(rows)
    day = FIRST_DAY + np.array([timedelta(days=int(d)) for d in range(days)])
    cents = rng.integers(100, 10_000_000, rows)
    return pa.table(
        {
            "category": pa.array(CATEGORIES[index % len(CATEGORIES)]),
            "currency": pa.array(CURRENCIES[(index // len(CATEGORIES)) % len(CURRENCIES)]),
            "bucket": pa.array(index // (len(CATEGORIES) * len(CURRENCIES) * days), pa.int64()),
            "orders": pa.array(rng.integers(1, 500, rows), pa.int64()),
            "units": pa.array(rng.integers(1, 2_000, rows), pa.int64()),
            "revenue": pa.array([Decimal(int(c)).scaleb(-2) for c in cents], pa.decimal128(12, 2)),
            "average_order_value": pa.array(
                [Decimal(int(c // 7)).scaleb(-2) for c in cents], pa.decimal128(12, 2)
            ),
            "cancelled_share": pa.array(rng.random(rows)),
            "order_date": pa.array(day[(index // (len(CATEGORIES) * len(CURRENCIES))) % days], pa.date32()),
        }
    )


def timed(action, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=100)
    arguments = parser.parse_args()
    work = fresh(WORK / "warehouse_load")
    os.chmod(work, 0o755)  # as root the server runs as another user, which must reach its folder

    started = time.perf_counter()
    table = gold_like(arguments.rows, arguments.days)
    uri = str(work / "gold" / "daily")
    deltalake.write_deltalake(uri, table, partition_by=["order_date"])
    elapsed = time.perf_counter() - started
    print(f"{arguments.rows:,} gold-like rows over {arguments.days} days written in {elapsed:.1f} s")

    server = LocalPostgres(work / "postgres")
    url = server.start()
    try:
        warehouse = PostgresWarehouse(url=url)
        snapshot = LakeSnapshot("gold.daily", uri)
        daily = ServedTable(
            "daily", "gold.daily", "bench", ("order_date", "category", "currency", "bucket"), "order_date"
        )
        whole = ServedTable("whole", "gold.daily", "bench", ("order_date", "category", "currency", "bucket"))
        every_day = DateRange(FIRST_DAY, FIRST_DAY + timedelta(days=arguments.days))
        one_day = DateRange(FIRST_DAY + timedelta(days=3), FIRST_DAY + timedelta(days=4))
        day_rows = snapshot.count("order_date", one_day)

        def load(served: ServedTable, window: DateRange | None) -> None:
            rows = snapshot.rows(served.partition_column, window)
            warehouse.load(served, rows, window=window, source_version=snapshot.version, run_id="bench")

        first = timed(lambda: load(daily, every_day), repeat=1)
        full = timed(lambda: load(daily, every_day))
        day = timed(lambda: load(daily, one_day))
        swap = timed(lambda: load(whole, None))
    finally:
        server.stop()

    print(f"\n{'load':44} {'rows':>10} {'seconds':>8} {'rows/s':>10}")
    for label, rows, seconds in (
        ("first load (creates the table), every day", arguments.rows, first),
        ("reload of every day (one range)", arguments.rows, full),
        ("reload of one day", day_rows, day),
        ("unpartitioned: staged and swapped whole", arguments.rows, swap),
    ):
        print(f"{label:44} {rows:>10,} {seconds:8.2f} {rows / seconds:>10,.0f}")


if __name__ == "__main__":
    main()
