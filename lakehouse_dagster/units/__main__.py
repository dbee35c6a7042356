"""Run one table's unit of work in this process, outside Dagster.

    python -m lakehouse_dagster.units silver.customers --as-of-date 2026-11-26
    python -m lakehouse_dagster.units --request '{"table": "bronze.customers", "as_of_date": ...}'
    python -m lakehouse_dagster.units --request - < request.json

The deployment comes from the environment (see ``deployment.py``). The report is printed as
one JSON line on stdout, also when the unit fails; logs go to stderr. Exit status: 0 when
the unit succeeded, 1 when it failed (the report says why), 2 when it could not start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date

from lakehouse_dagster.declarations.table import DEFAULT_REGISTRY, Table, load_registry
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import PartitionWindow, UnitRequest, today_utc
from lakehouse_dagster.units.run import run_unit


def parse_request(argv: list[str] | None, settings_as_of: date | None) -> tuple[UnitRequest, str]:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse_dagster.units", description=__doc__.split("\n")[1]
    )
    parser.add_argument("table", nargs="?", help="layer.table, e.g. bronze.customers")
    parser.add_argument(
        "--request",
        help="the whole request as JSON, or - to read it from stdin (what the subprocess runner sends)",
    )
    parser.add_argument("--registry", default=DEFAULT_REGISTRY, help="the registry, as module:attribute")
    parser.add_argument("--run-id", default="manual")
    parser.add_argument("--as-of-date", type=date.fromisoformat)
    parser.add_argument("--partition-start", type=date.fromisoformat, help="first day of the partition range")
    parser.add_argument(
        "--partition-end", type=date.fromisoformat, help="day after the last day of the range"
    )
    parser.add_argument(
        "--file", action="append", dest="files", help="ingest only this landed file (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.request:
        text = sys.stdin.read() if args.request == "-" else args.request
        return UnitRequest.from_json(text), args.registry
    if not args.table:
        parser.error("give a table (or --request)")
    partition = None
    if args.partition_start or args.partition_end:
        if not (args.partition_start and args.partition_end):
            parser.error("--partition-start and --partition-end go together")
        partition = PartitionWindow(args.partition_start, args.partition_end)
    request = UnitRequest(
        table=args.table,
        as_of_date=args.as_of_date or settings_as_of or today_utc(),
        run_id=args.run_id,
        partition=partition,
        files=tuple(args.files) if args.files else None,
    )
    return request, args.registry


def run_standalone(
    request: UnitRequest, table: Table, settings: LakehouseSettings, log: logging.Logger
) -> UnitResult:
    """The unit with only the request and the deployment's settings: its own engine session."""
    with spark_session(settings.engine) as spark:
        tables = DeltaTables(spark, settings.layout)
        return run_unit(request, table, tables, settings.thresholds, log, settings.mlflow)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("lakehouse_dagster.units")
    try:
        settings = LakehouseSettings.from_env()
        request, registry = parse_request(argv, settings.as_of_date)
        table = load_registry(registry).table(request.table)
        if request.partition is not None and not table.partitioned:
            raise ValueError(
                f"{table.name} is not partitioned by day: a partition range does not apply to it"
            )
    except (ValueError, KeyError, ImportError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = run_standalone(request, table, settings, log)
    print("\n" + result.to_json(), flush=True)  # on a line of its own, whatever the unit printed
    if result.error is not None:
        print(f"error: {result.table}: {result.error.kind}: {result.error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
