"""Write sample data into a landing zone.

python -m lakehouse_dagster.sample_data customers --out .lakehouse/landing --rows 10000 --files 5 --seed 7
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

    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
