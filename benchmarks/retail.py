"""Benchmark of the sales domain against a hand-written build: about 1M orders (30 days of
full-load history and 30 days of DMS change data at 16,500 new orders a day), raw to gold.

    .venv/bin/python benchmarks/retail.py [--orders-per-day 16500] [--days 30] [--per-asset]

The project builds the sales assets as a user does, with two ``dagster asset materialize`` runs
(in-process executor, embedded Sail): the unpartitioned assets, then the partitioned ones over
every order date as one range (a single-run backfill). The reference
(``reference/retail_reference.py``: Polars and deltalake, facts partitioned by order date)
builds the same tables from the same landing files in the same invocation. Each runs as its own
process: wall time and peak RSS, and the ratio. ``--per-asset`` also runs each asset's unit in
a process of its own (``python -m lakehouse_dagster.units``).
"""

from __future__ import annotations

import argparse
import csv
from datetime import date, timedelta
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.compute
from harness import WORK, fresh, materialize, print_measurements, run_process, run_reference, run_unit_process

from lakehouse_dagster.domains.sales.tables import DOMAIN as SALES

AS_OF = "2026-11-26"
AS_OF_ENV = {"LAKEHOUSE_AS_OF_DATE": AS_OF}


def selection(tables: list) -> str:
    return ",".join("/".join(table.name.key_path) for table in tables)


def reference_table(name: str) -> str:
    """The reference names the sales silver tables without the domain's prefix, but for customers."""
    return name if name.startswith("sales_customers") else name.removeprefix("sales_")


def rows(lake: Path, layer: str, table: str) -> int:
    actions = pa.table(deltalake.DeltaTable(str(lake / layer / table)).get_add_actions(flatten=True))
    return pa.compute.sum(actions["num_records"]).as_py()


def order_days(truth: Path) -> list[str]:
    with (truth / "orders.csv").open() as handle:
        return sorted({row["order_ts"][:10] for row in csv.DictReader(handle)})


def landed_sample(days: int, orders_per_day: int, customers: int, products: int) -> tuple[Path, str]:
    """The simulated landing and truth of these parameters (seed 7), made once and kept under
    ``.work/samples``: the simulator is single-threaded Python (about 100 s at the default size,
    about 15 minutes at 10 times it), and the same seed gives the same files."""
    sample = WORK / "samples" / f"retail_{days}d_{orders_per_day}opd_{customers}c_{products}p_seed7"
    complete = sample / ".complete"
    if complete.exists():
        return sample, "reused"
    fresh(sample)
    simulation = run_process(
        "simulator (sample_data retail)",
        [
            "-m",
            "lakehouse_dagster.sample_data",
            "retail",
            "--out",
            str(sample / "landing"),
            "--days",
            str(days),
            "--seed",
            "7",
            "--customers",
            str(customers),
            "--products",
            str(products),
            "--orders-per-day",
            str(orders_per_day),
            "--truth",
            str(sample / "truth"),
        ],
    )
    complete.touch()
    return (
        sample,
        f"simulated in {simulation.wall_seconds:.1f} s, peak RSS {simulation.peak_rss_mib:,.0f} MiB",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orders-per-day", type=int, default=16_500)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--per-asset", action="store_true", help="also each asset's unit in its own process")
    args = parser.parse_args()
    per_asset = args.per_asset

    root = fresh(WORK / "retail")
    sample, origin = landed_sample(args.days, args.orders_per_day, args.customers, args.products)
    (root / "landing").symlink_to(sample / "landing")
    days = order_days(sample / "truth")
    end = (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()
    print(f"{len(days)} order dates: {days[0]} .. {days[-1]} ({origin})\n")

    unpartitioned = [table for table in SALES.tables if not table.partitioned]
    partitioned = [table for table in SALES.tables if table.partitioned]
    runs = [
        materialize("project: unpartitioned assets", root, selection(unpartitioned), **AS_OF_ENV),
        materialize(
            "project: partitioned, one range",
            root,
            selection(partitioned),
            "--partition-range",
            f"{days[0]}...{days[-1]}",
            **AS_OF_ENV,
        ),
    ]
    reference_lake = fresh(WORK / "retail_reference")
    window = ("--partition-start", days[0], "--partition-end", end)
    reference = run_reference(
        "reference: Polars + deltalake",
        "retail_reference.py",
        str(root / "landing"),
        str(reference_lake),
        "--as-of-date",
        AS_OF,
        *window,
        "--partition-facts",
    )
    print_measurements([*runs, reference])
    project_wall = sum(run.wall_seconds for run in runs)
    project_rss = max(run.peak_rss_mib for run in runs)
    print(
        f"ratio project / reference: wall {project_wall / reference.wall_seconds:.2f}x "
        f"({project_wall:.1f} s / {reference.wall_seconds:.1f} s), "
        f"peak RSS {project_rss / reference.peak_rss_mib:.2f}x"
    )
    for table in SALES.tables:
        layer, name = table.name.layer, table.name.table
        if layer in ("silver", "gold"):
            reference_name = reference_table(name)
            project_rows, reference_rows = (
                rows(root, layer, name),
                rows(reference_lake, layer, reference_name),
            )
            print(f"rows {table.name}: project {project_rows:,}, reference {reference_rows:,}")

    if per_asset:
        print("\neach asset's unit in its own process, on a fresh lake:")
        lake = fresh(WORK / "retail_units")
        (lake / "landing").symlink_to(root / "landing")
        measurements = []
        for table in SALES.tables:  # declared in dependency order
            arguments = ("--as-of-date", AS_OF, *(window if table.partitioned else ()))
            measurements.append(run_unit_process(str(table.name), lake, *arguments))
        print_measurements(measurements)


if __name__ == "__main__":
    main()
