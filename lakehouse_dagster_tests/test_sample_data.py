"""The sample data generator: deterministic, and dirty in every way the pipeline must handle."""

from __future__ import annotations

import csv
from pathlib import Path

from lakehouse_dagster.sample_data.__main__ import main
from lakehouse_dagster.sample_data.customers import COLUMNS, generate_customers
from lakehouse_dagster_tests.oracle import landed_records, parse_date, parse_id


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.rglob("*.csv"))}


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert (
            main(
                [
                    "customers",
                    "--out",
                    str(tmp_path / name),
                    "--rows",
                    "500",
                    "--files",
                    "4",
                    "--seed",
                    str(seed),
                ]
            )
            == 0
        )

    assert contents(tmp_path / "a") == contents(tmp_path / "b")
    assert contents(tmp_path / "a") != contents(tmp_path / "c")
    assert list(contents(tmp_path / "a")) == [f"customers_0000{i}.csv" for i in range(1, 5)]


def test_data_is_dirty_in_every_documented_way(tmp_path: Path) -> None:
    files = generate_customers(tmp_path, rows=4_000, files=6, seed=7)
    raw = landed_records(files)
    well_formed = raw[~raw["_malformed"]]
    headers = [next(csv.reader(path.open())) for path in files]

    assert headers[0] == COLUMNS and headers[-1] == [*COLUMNS, "loyalty_tier"]
    assert raw["_malformed"].sum() >= len(files), "a malformed line in every file"
    assert any('"' in line for line in raw.loc[raw["_malformed"], "_raw"]), "a broken quote"
    emails = well_formed["email"].dropna()
    assert (emails != emails.str.strip()).any() and (emails != emails.str.lower()).any()
    assert well_formed["email"].isna().any() and well_formed["customer_id"].isna().any()
    assert well_formed["customer_id"].map(lambda v: isinstance(v, str) and parse_id(v) is None).any()
    assert well_formed["signup_date"].map(lambda v: isinstance(v, str) and parse_date(v) is None).any()
    assert well_formed["last_name"].dropna().str.contains(",").any(), "values that need quoting"
    ids = well_formed.assign(id=well_formed["customer_id"].map(parse_id)).dropna(subset=["id"])
    repeated = ids.groupby("id")["_file_order"].nunique()
    assert (repeated > 1).sum() > 100, "customers appear again in later files"
