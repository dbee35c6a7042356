"""Run one table's unit of work in this process, outside Dagster.

    python -m lakehouse_dagster.units silver.customers --as-of-date 2026-11-26

The deployment comes from the environment (see ``deployment.py``). The result is printed
as one JSON line on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date

from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.units.base import PartitionWindow, UnitRequest
from lakehouse_dagster.units.runner import execute_standalone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse_dagster.units", description=__doc__.split("\n")[1]
    )
    parser.add_argument("table", help="layer.table, e.g. bronze.customers")
    parser.add_argument("--run-id", default="manual")
    parser.add_argument("--as-of-date", type=date.fromisoformat)
    parser.add_argument("--partition-start", type=date.fromisoformat, help="first day of the partition range")
    parser.add_argument(
        "--partition-end", type=date.fromisoformat, help="day after the last day of the range"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    partition = None
    if args.partition_start or args.partition_end:
        if not (args.partition_start and args.partition_end):
            parser.error("--partition-start and --partition-end go together")
        partition = PartitionWindow(args.partition_start, args.partition_end)
    settings = LakehouseSettings.from_env()
    request = UnitRequest(
        table=args.table,
        run_id=args.run_id,
        as_of_date=args.as_of_date or settings.as_of_date,
        partition=partition,
    )
    result = execute_standalone(request, settings, logging.getLogger("lakehouse_dagster.units"))
    print(result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
