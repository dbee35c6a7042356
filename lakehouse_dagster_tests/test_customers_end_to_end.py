"""The customers slice through Dagster, checked against pandas over the raw files."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.domains.customers.tables import DOMAIN as CUSTOMERS
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster_tests.events import materializations
from lakehouse_dagster_tests.exact import canonical
from lakehouse_dagster_tests.landing_files import csv_text, land
from lakehouse_dagster_tests.oracle import (
    expected_customer_segments,
    expected_silver_customers,
    landed_records,
    parse_date,
    parse_id,
)
from lakehouse_dagster_tests.units import run_table

AS_OF = date(2026, 11, 26)
BRONZE, SILVER, GOLD = (
    TableName.parse(n) for n in ("bronze.customers", "silver.customers", "gold.customer_segments")
)
CUSTOMER_KEYS = [dg.AssetKey(table.name.key_path) for table in CUSTOMERS.tables]
RUN_CONFIG = {"ops": {"silver__customers": {"config": {"as_of_date": AS_OF.isoformat()}}}}


def records(frame: pd.DataFrame) -> list[dict]:
    def clean(value):
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
            return None
        return value.date() if isinstance(value, pd.Timestamp) else value

    return [{k: clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def expected_rescued(raw: pd.DataFrame) -> int:
    """Malformed lines, plus well-formed lines with a value that fails its type."""

    def bad(value, parse) -> bool:
        return isinstance(value, str) and parse(value) is None

    well_formed = raw[~raw["_malformed"]]
    bad_values = (
        well_formed["customer_id"].map(lambda v: bad(v, parse_id))
        | well_formed["signup_date"].map(lambda v: bad(v, parse_date))
        | well_formed["last_activity"].map(lambda v: bad(v, parse_date))
    )
    return int(raw["_malformed"].sum() + bad_values.sum())


def raw_expectation_counts(raw: pd.DataFrame) -> dict[str, int]:
    """Rows of the raw files that fail silver's expectations, which see every typed record
    (with or without an id, before deduplication)."""
    import re

    ids = raw["customer_id"].map(parse_id)
    email = raw["email"].map(lambda v: v.strip().lower() if isinstance(v, str) and v.strip() else None)
    country = raw["country"].map(lambda v: v.strip().upper() if isinstance(v, str) and v.strip() else None)
    pattern = re.compile(r"^[^@ ]+@[^@ ]+[.][^@ ]+$")
    return {
        "no_id": int(ids.isna().sum()),
        "bad_email": int(email.map(lambda e: not (isinstance(e, str) and pattern.match(e))).sum()),
        "bad_country": int(
            country.map(lambda c: not (isinstance(c, str) and re.match(r"^[A-Z]{2}$", c))).sum()
        ),
    }


class Lakehouse:
    def __init__(self, settings: LakehouseSettings, tables) -> None:
        self.defs = build_definitions(settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.tables = tables

    def run(self) -> dg.ExecuteInProcessResult:
        result = self.defs.resolve_job_def("lakehouse_job").execute_in_process(
            run_config=RUN_CONFIG, instance=self.instance, asset_selection=CUSTOMER_KEYS
        )
        assert result.success
        return result

    def frame(self, name: TableName) -> pd.DataFrame:
        return self.tables.read(name).toPandas()


def metadata(result: dg.ExecuteInProcessResult, name: TableName) -> dict:
    (materialization,) = materializations(result, name)
    return {key: value.value for key, value in materialization.metadata.items()}


def silver_as_records(lake: Lakehouse) -> list[dict]:
    frame = lake.frame(SILVER).drop(columns=["_source_file", "_batch_id"]).sort_values("customer_id")
    return records(frame.reset_index(drop=True))


def gold_as_records(lake: Lakehouse) -> list[dict]:
    frame = lake.frame(GOLD).sort_values(["customer_segment", "country"]).reset_index(drop=True)
    return records(
        frame[["customer_segment", "country", "customers", "share_of_customers", "avg_days_since_activity"]]
    )


def assert_matches_oracle(lake: Lakehouse, files: list[Path]) -> None:
    raw = landed_records(files)
    assert lake.tables.read(BRONZE).count() == len(raw)
    expected_silver = expected_silver_customers(raw, AS_OF)
    assert silver_as_records(lake) == records(expected_silver)
    expected_gold = expected_customer_segments(expected_silver)
    actual_gold = gold_as_records(lake)
    expected_gold_records = records(expected_gold[list(actual_gold[0])])
    assert [(r["customer_segment"], r["country"], r["customers"]) for r in actual_gold] == [
        (r["customer_segment"], r["country"], r["customers"]) for r in expected_gold_records
    ]
    for actual, expected in zip(actual_gold, expected_gold_records, strict=True):
        for column in ("share_of_customers", "avg_days_since_activity"):  # doubles, bit for bit
            assert canonical(actual[column]) == canonical(expected[column]), (actual, column)


@pytest.fixture
def lake(sail_url, layout, tables) -> Lakehouse:
    settings = LakehouseSettings(Deployment.TEST, layout, EngineSettings(remote_url=sail_url))
    return Lakehouse(settings, tables)


def test_slice_matches_pandas_then_reruns_change_nothing_then_only_new_files_are_ingested(
    lake, landing
) -> None:
    files = generate_customers(landing, rows=3_000, files=6, seed=11)
    raw = landed_records(files)

    first = lake.run()

    assert_matches_oracle(lake, files)
    bronze = metadata(first, BRONZE)
    assert bronze["lakehouse/files_ingested"] == 6
    assert bronze["lakehouse/rows_rescued"] == expected_rescued(raw) > 0
    assert bronze["lakehouse/new_columns"] == ["loyalty_tier"]
    silver = metadata(first, SILVER)
    assert silver["lakehouse/rows_quarantined"] == int(raw["customer_id"].map(parse_id).isna().sum())
    assert silver["dagster/row_count"] == len(expected_silver_customers(raw, AS_OF))
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e for e in first.get_asset_check_evaluations()
    }
    graph = lake.defs.resolve_asset_graph()
    specs = {
        (key.asset_key.to_user_string(), key.name)
        for key in graph.asset_check_keys
        if key.asset_key in CUSTOMER_KEYS
    }
    schema_checks = {
        (key, "column_schema_change")
        for key in ("bronze/bronze.customers", "silver/silver.customers", "gold/gold.customer_segments")
    }
    assert set(evaluations) == specs | schema_checks, "every check of the slice reports"
    failed_errors = [
        k for k, e in evaluations.items() if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed_errors == []
    # Warn and drop counts, computed from the raw files.
    failed = {
        k: e.metadata["failed_records"].value
        for k, e in evaluations.items()
        if "failed_records" in e.metadata
    }
    oracle = raw_expectation_counts(raw)
    assert failed[("silver/silver.customers", "customer_id_present")] == oracle["no_id"] > 0
    assert failed[("silver/silver.customers", "valid_email")] == oracle["bad_email"] > 0
    assert failed[("silver/silver.customers", "known_country")] == oracle["bad_country"] > 0
    assert failed[("bronze/bronze.customers", "no_rescued_data")] == expected_rescued(raw)
    quarantined = lake.tables.read(TableName("quarantine", "customers"))
    assert quarantined.count() == oracle["no_id"]
    assert {tuple(r["_failed_expectations"]) for r in quarantined.collect()} == {("customer_id_present",)}

    versions = {name: lake.tables.version(name) for name in (BRONZE, SILVER, GOLD)}
    silver_before, gold_before = silver_as_records(lake), gold_as_records(lake)
    second = lake.run()

    assert metadata(second, BRONZE)["lakehouse/files_ingested"] == 0
    assert lake.tables.version(BRONZE) == versions[BRONZE]
    assert (silver_as_records(lake), gold_as_records(lake)) == (silver_before, gold_before)
    for name in (BRONZE, SILVER, GOLD):
        assert metadata(second, name)["dagster/row_count"] == metadata(first, name)["dagster/row_count"]

    new_batch = generate_customers(landing, rows=150, files=1, seed=12, start_index=7)
    third = lake.run()

    bronze = metadata(third, BRONZE)
    assert (bronze["lakehouse/files_ingested"], bronze["lakehouse/rows_ingested"]) == (
        1,
        len(landed_records(new_batch)),
    )
    assert_matches_oracle(lake, [*files, *new_batch])


def test_materialisations_report_schema_location_and_version(lake, landing, layout) -> None:
    generate_customers(landing, rows=200, files=2, seed=5)

    result = lake.run()

    (materialization,) = materializations(result, GOLD)
    schema = materialization.metadata["dagster/column_schema"].value
    assert [c.name for c in schema.columns] == lake.tables.read(GOLD).columns
    assert materialization.metadata["dagster/uri"].value == layout.table_uri(GOLD)
    # Version 0 is the table's creation, empty; version 1 its first write.
    assert materialization.metadata["lakehouse/delta_version"].value == lake.tables.version(GOLD) == 1


def write_bad_file(folder: Path, rows: int) -> tuple[int, int]:
    """A file that is mostly bad on purpose: three ids in four unusable, every third email broken.
    Returns the rows without an id and the rows with a broken email."""
    lines = ["customer_id,first_name,last_name,email,country,signup_date,last_activity"]
    no_id = bad_email = 0
    for i in range(rows):
        customer_id = f"{900_000 + i}" if i % 4 == 0 else ("" if i % 2 else f"X-{i}")
        email = "not-an-email" if i % 3 == 0 else f"bad.file{i}@example.com"
        no_id += i % 4 != 0
        bad_email += i % 3 == 0
        lines.append(f"{customer_id},Ann,Bad,{email},SE,2026-01-02,2026-11-20")
    (folder / "customers_bad.csv").write_text("\n".join(lines) + "\n")
    return no_id, bad_email


def test_the_usual_dirt_is_green_a_bad_file_turns_checks_yellow_an_unreadable_one_red(lake, landing) -> None:
    generate_customers(landing, rows=3_000, files=6, seed=11)
    first = lake.run()
    assert [
        (e.asset_key.path[-1], e.check_name) for e in first.get_asset_check_evaluations() if not e.passed
    ] == []

    no_id, _ = write_bad_file(landing / "customers", rows=400)
    (landing / "customers" / "customers_unreadable.csv").write_bytes(b"\x00\xff\xfe\x00binary\x00\x81")
    second = lake.run()  # nothing blocks: silver and gold are rebuilt

    evaluations = {(e.asset_key.path[-1], e.check_name): e for e in second.get_asset_check_evaluations()}
    failed = {key: e.severity for key, e in evaluations.items() if not e.passed}
    assert failed == {
        ("bronze.customers", "customer_id_present"): dg.AssetCheckSeverity.WARN,
        ("bronze.customers", "no_rescued_data"): dg.AssetCheckSeverity.WARN,  # the X-<n> ids
        ("bronze.customers", "no_rejected_files"): dg.AssetCheckSeverity.ERROR,
        ("silver.customers", "customer_id_present"): dg.AssetCheckSeverity.WARN,
        ("silver.customers", "valid_email"): dg.AssetCheckSeverity.WARN,
    }
    bronze_ids = evaluations[("bronze.customers", "customer_id_present")]
    assert bronze_ids.metadata["failed_records"].value == no_id
    assert bronze_ids.description.startswith(
        f"{no_id} of 400 rows failed"
    ) and "more than the tolerated 3%" in (bronze_ids.description)
    rejected = evaluations[("bronze.customers", "no_rejected_files")]
    assert "customers/customers_unreadable.csv" in rejected.description and not rejected.blocking
    assert materializations(second, GOLD), "a rejected file blocks nothing downstream"

    quarantine = TableName("quarantine", "customers")
    (reported,) = materializations_of(second, quarantine)
    assert reported.metadata["dagster/row_count"].value == lake.tables.read(quarantine).count()
    assert reported.metadata["lakehouse/rows_by_expectation"].value == {
        "customer_id_present": lake.tables.read(quarantine).count()
    }
    sample = [dict(record.data) for record in reported.metadata["lakehouse/sample"].value.records]
    assert sample and all(row["why"] == "customer_id_present" for row in sample)
    assert all(row["source"].startswith("customers/customers_") for row in sample), "below the landing zone"
    assert not any(str(landing) in value for row in sample for value in row.values() if value)


def materializations_of(result: dg.ExecuteInProcessResult, name: TableName) -> list[dg.AssetMaterialization]:
    """The materialisations a run reported of a table written by another table's step."""
    key = dg.AssetKey(name.key_path)
    return [
        event.event_specific_data.materialization
        for event in result.all_events
        if event.is_step_materialization and event.event_specific_data.materialization.asset_key == key
    ]


def test_silver_writes_and_quarantines_the_bronze_rows_its_expectations_judged(
    tables, landing, monkeypatch
) -> None:
    """An ingestion commits to bronze while silver.customers builds (after its expectations'
    pass, before its write): the write and the quarantine take the rows that were judged."""
    header = ["customer_id", "first_name", "last_name", "email", "country", "signup_date", "last_activity"]
    first = [
        [1, "Ann", "Lee", "ann@x.com", "us", "2025-01-01", "2026-11-20"],
        ["", "No", "Id", "n@x.com", "us", "", ""],
    ]
    later = [
        [2, "Bo", "Kim", "not-an-email", "us", "2025-01-01", "2026-11-20"],
        ["", "No", "Id2", "m@x.com", "", "", ""],
    ]
    land(landing / "customers", "first.csv", csv_text(header, first))
    run_table(tables, "bronze.customers")
    overwrite = DeltaTables.overwrite

    def ingestion_commits_first(self, name, frame, **options):
        if name == TableName("silver", "customers") and not (landing / "customers" / "later.csv").exists():
            land(landing / "customers", "later.csv", csv_text(header, later))
            run_table(tables, "bronze.customers")
        return overwrite(self, name, frame, **options)

    monkeypatch.setattr(DeltaTables, "overwrite", ingestion_commits_first)
    result = run_table(tables, "silver.customers", as_of_date=AS_OF)

    judged = [row for row in first if row[0] != ""]
    assert sorted(row["customer_id"] for row in tables.read(TableName("silver", "customers")).collect()) == [
        row[0] for row in judged
    ]
    assert tables.read(TableName("quarantine", "customers")).count() == len(first) - len(judged)
    assert result.metadata["lakehouse/rows_evaluated"] == len(first)
