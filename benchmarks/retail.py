"""Benchmark of the sales domain: about 1M orders (30 days of full-load history and 30 days of
DMS change data at 16,500 new orders a day), raw to gold.

    .venv/bin/python benchmarks/retail.py [--orders-per-day 16500] [--days 30]

The simulator and each asset run as their own processes (wall time and peak RSS each; the
engine runs inside the asset's process). The three partitioned assets are built as one
range, as a single-run backfill does.
"""

from __future__ import annotations

import argparse
import csv
from datetime import date, timedelta
from pathlib import Path

from harness import WORK, fresh, print_measurements, run_process, run_unit_process

from lakehouse_dagster.domains.sales.tables import DOMAIN as SALES

AS_OF = "2026-11-26"


def order_days(truth: Path) -> list[str]:
    with (truth / "orders.csv").open() as handle:
        return sorted({row["order_ts"][:10] for row in csv.DictReader(handle)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orders-per-day", type=int, default=16_500)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=2_000)
    args = parser.parse_args()

    root = fresh(WORK / "retail")
    simulation = run_process(
        "simulator (sample_data retail)",
        [
            "-m",
            "lakehouse_dagster.sample_data",
            "retail",
            "--out",
            str(root / "landing"),
            "--days",
            str(args.days),
            "--seed",
            "7",
            "--customers",
            str(args.customers),
            "--products",
            str(args.products),
            "--orders-per-day",
            str(args.orders_per_day),
            "--truth",
            str(root / "truth"),
        ],
    )
    days = order_days(root / "truth")
    end = (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()
    window = ("--partition-start", days[0], "--partition-end", end)

    measurements = [simulation]
    for table in SALES.tables:  # declared in dependency order
        arguments = ("--as-of-date", AS_OF, *(window if table.partitioned else ()))
        measurements.append(run_unit_process(str(table.name), root, *arguments))
    print(f"partitioned assets built as one range: {days[0]} .. {days[-1]} ({len(days)} days)")
    print_measurements(measurements)


if __name__ == "__main__":
    main()
