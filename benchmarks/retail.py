"""Benchmark of the sales domain: about 1M orders (30 days of full-load history and 30 days of
DMS change data at 16,500 new orders a day), raw to gold.

    .venv/bin/python benchmarks/retail.py [--orders-per-day 16500] [--days 30]

Each asset runs as its own process on an embedded engine (wall time and peak RSS per
asset); the three partitioned assets are built as one range, as a single-run backfill does.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date, timedelta

from harness import WORK, fresh, print_measurements, run_unit_process

from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster.units.sales import BRONZE_UNITS, FACT_UNITS, GOLD_UNITS, SILVER_CDC_UNITS

AS_OF = "2026-11-26"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orders-per-day", type=int, default=16_500)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=2_000)
    args = parser.parse_args()

    root = fresh(WORK / "retail")
    started = time.perf_counter()
    simulation = simulate_retail(
        days=args.days,
        seed=7,
        customers=args.customers,
        products=args.products,
        orders_per_day=args.orders_per_day,
    )
    written = write_landing(simulation, root / "landing")
    orders = len(simulation.truth.tables["orders"])
    print(
        f"simulated {orders:,} orders in the final state, {simulation.stats['changes']:,} changes, "
        f"{len(written)} files in {time.perf_counter() - started:.1f} s "
        f"(peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)\n"
    )
    days = sorted({ts[:10] for ts in simulation.truth.tables["orders"]["order_ts"]})
    window = ("--partition-start", days[0], "--partition-end", _next_day(days[-1]))

    measurements = []
    for unit in (*BRONZE_UNITS, *SILVER_CDC_UNITS, *FACT_UNITS, *GOLD_UNITS):
        arguments = ("--as-of-date", AS_OF, *(window if unit.partitioned else ()))
        measurements.append(run_unit_process(str(unit.name), root, *arguments))
    print(f"partitioned assets built as one range: {days[0]} .. {days[-1]} ({len(days)} days)")
    print_measurements(measurements)


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


if __name__ == "__main__":
    main()
