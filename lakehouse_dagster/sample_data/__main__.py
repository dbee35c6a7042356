"""Write sample data into a landing zone.

python -m lakehouse_dagster.sample_data customers --out .lakehouse/landing --rows 10000 --files 5 --seed 7
python -m lakehouse_dagster.sample_data retail --out .lakehouse/landing --days 7 --seed 7
python -m lakehouse_dagster.sample_data events --stream lakehouse-events --rate 1000 --seconds 60
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from lakehouse_dagster.sample_data.customers import DEFAULT_END_DATE, generate_customers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dagster.sample_data")
    datasets = parser.add_subparsers(dest="dataset", required=True)

    customers = datasets.add_parser("customers", help="customer CSV batches under <out>/customers")
    customers.add_argument("--out", type=Path, required=True, help="the landing zone")
    customers.add_argument("--rows", type=int, default=10_000)
    customers.add_argument("--files", type=int, default=5)
    customers.add_argument("--seed", type=int, default=7)
    customers.add_argument("--start-index", type=int, default=1, help="number of the first file written")
    customers.add_argument("--end-date", type=date.fromisoformat, default=DEFAULT_END_DATE)

    retail = datasets.add_parser(
        "retail", help="AWS DMS files of the sales database under <out>/dms/sales/<table>, and its truth"
    )
    retail.add_argument("--out", type=Path, required=True, help="the landing zone")
    retail.add_argument("--days", type=int, default=7)
    retail.add_argument("--seed", type=int, default=7)
    retail.add_argument(
        "--truth", type=Path, help="where the true tables go (default: <out>/../retail_truth)"
    )
    retail.add_argument("--customers", type=int, default=2_000)
    retail.add_argument("--products", type=int, default=200)
    retail.add_argument("--orders-per-day", type=int, default=300)
    retail.add_argument("--full-load-rows-per-file", type=int, default=50_000)
    retail.add_argument("--end-date", type=date.fromisoformat, default=DEFAULT_END_DATE)

    events = datasets.add_parser(
        "events", help="clickstream events put on a Kinesis stream (LAKEHOUSE_AWS_ENDPOINT_URL for moto)"
    )
    events.add_argument("--stream", required=True, help="the Kinesis stream")
    events.add_argument("--rate", type=int, default=100, help="records a second")
    events.add_argument("--seconds", type=float, default=60)
    events.add_argument("--seed", type=int, default=7)
    events.add_argument("--truth", type=Path, help="write every record put here (JSON lines)")

    args = parser.parse_args(argv)
    if args.dataset == "retail":
        return _retail(args)
    if args.dataset == "events":
        return _events(args)
    written = generate_customers(
        args.out,
        rows=args.rows,
        files=args.files,
        seed=args.seed,
        start_index=args.start_index,
        end_date=args.end_date,
    )
    print(f"wrote {len(written)} file(s) under {args.out / 'customers'}")
    return 0


def _retail(args: argparse.Namespace) -> int:
    # Imported here so that the customers command does not pay for pandas.
    from lakehouse_dagster.sample_data.retail import SCHEMA, simulate_retail, write_landing, write_truth

    simulation = simulate_retail(
        days=args.days,
        seed=args.seed,
        end_date=args.end_date,
        customers=args.customers,
        products=args.products,
        orders_per_day=args.orders_per_day,
        full_load_rows_per_file=args.full_load_rows_per_file,
    )
    truth = args.truth if args.truth is not None else args.out.resolve().parent / "retail_truth"
    written = write_landing(simulation, args.out)
    write_truth(simulation, truth)
    stats = simulation.stats
    print(
        f"wrote {len(written)} file(s) under {args.out / 'dms' / SCHEMA} "
        f"({stats['full_load_files']} full load, {stats['cdc_files']} CDC, {stats['late_files']} late; "
        f"{stats['changes']} changes, {stats['transactions_touching_a_key_twice']} transactions touching "
        f"a key twice, {stats['duplicates']} duplicated, {stats['reordered']} reordered, "
        f"{stats['malformed_rows']} malformed, {stats['unknown_op_rows']} unknown Op) "
        f"for {simulation.start:%Y-%m-%d} to {simulation.end:%Y-%m-%d}; truth in {truth}"
    )
    return 0


def _events(args: argparse.Namespace) -> int:
    from lakehouse_dagster.deployment import LakehouseSettings, use_moto_credentials
    from lakehouse_dagster.sample_data.events import Clickstream, produce

    aws = LakehouseSettings.from_env().aws
    use_moto_credentials(aws.endpoint_url)
    truth = args.truth.open("w") if args.truth else None
    try:
        stats = produce(
            aws.client("kinesis"), args.stream, args.rate, args.seconds, Clickstream(seed=args.seed), truth
        )
    finally:
        if truth is not None:
            truth.close()
    print(
        f"put {stats.records} record(s) on {args.stream} at {aws.describe()} in {stats.seconds:.1f} s "
        f"({stats.events} events, {stats.duplicates} duplicates, {stats.malformed} not JSON; "
        f"{stats.retried_puts} puts retried)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
