"""Writers racing on every write path: several processes run the same table's unit at the same
instant. Each row lands once; a loser ingests nothing or fails with ConcurrentWriteError."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from lakehouse_dagster.cdc.transforms import START_AT
from lakehouse_dagster.ingest.ledger import CLAIMED, COMMITTED, ledger_table
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.history import DATA_QUALITY
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster_tests.oracle import landed_records, parse_id
from lakehouse_dagster_tests.test_cdc_apply import customer, dms_file, order, ts
from lakehouse_dagster_tests.units import as_an_earlier_release_wrote_it, run_table

WRITERS = 4
#: Time for every process to import and connect before the common start.
WARM_UP_SECONDS = 6.0


def race(sail_url: str, root: str, table: str, *window: str) -> list[UnitResult]:
    start = time.time() + WARM_UP_SECONDS
    command = [sys.executable, "-m", "lakehouse_dagster_tests.faults.race", sail_url, root, str(start), table]
    processes = [
        subprocess.Popen([*command, *window], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(WRITERS)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        results.append(UnitResult.from_json(stdout.strip().splitlines()[-1]))
    assert time.time() > start, "the writers started together"
    for result in results:
        assert result.error is None or result.error.kind == "ConcurrentWriteError", result.error
    assert any(result.error is None for result in results), "at least one writer succeeds"
    return results


def duplicates(rows: list[tuple]) -> list[tuple]:
    return [row for row, count in Counter(rows).items() if count > 1]


def test_writers_racing_on_a_bronze_table_ingest_every_file_once(sail_url, layout, landing, tables) -> None:
    files = generate_customers(landing, rows=2_000, files=8, seed=31)

    results = race(sail_url, layout.root, "bronze.customers")

    rows = [
        (r["_source_file"], r["_source_row"]) for r in tables.read(TableName("bronze", "customers")).collect()
    ]
    assert duplicates(rows) == []
    assert len(rows) == len(landed_records(files))
    reports = [
        {k: r.metadata[f"lakehouse/{k}"] for k in ("files_ingested", "batches", "recovered_batches")}
        for r in results
        if r.error is None
    ]
    assert sum(r["files_ingested"] for r in reports) == len(files), reports
    events = tables.read(ledger_table(TableName("bronze", "customers"))).collect()
    committed = [e["file_path"] for e in events if e["event"] == COMMITTED]
    claimed = [e["file_path"] for e in events if e["event"] == CLAIMED]
    assert sorted(committed) == sorted(claimed) == sorted(str(f) for f in files), "each file in one batch"


@pytest.fixture
def dms(layout, landing, tables):
    """The sales DMS files landed and their bronze tables ingested (by one writer)."""
    simulation = simulate_retail(days=3, seed=5, customers=200, products=30, orders_per_day=30)
    write_landing(simulation, landing, include_late=False)
    for source in ("customers", "products", "orders", "order_items"):
        run_table(tables, f"bronze.sales_{source}")
    return simulation


def test_writers_racing_on_the_first_and_the_next_scd2_writes_keep_one_row_per_version(
    sail_url, layout, landing, tables, dms
) -> None:
    history = TableName("silver", "sales_customers_history")

    race(sail_url, layout.root, str(history))  # the table's first write

    def versions() -> list[tuple]:
        return [(r["customer_id"], r[START_AT]) for r in tables.read(history).collect()]

    assert duplicates(versions()) == []
    first = sorted(versions())
    write_landing(dms, landing, only_late=True)
    run_table(tables, "bronze.sales_customers")

    race(sail_url, layout.root, str(history))  # an incremental write

    assert duplicates(versions()) == []
    assert len(versions()) >= len(first)
    single = run_table(tables, str(history))  # nothing left to apply: a rerun changes nothing
    assert single.metadata["lakehouse/batches_applied"] == []
    assert next(c for c in single.checks if c.name == "primary_key").passed


def test_writers_racing_on_an_scd1_table_and_its_quarantine_apply_each_change_once(
    sail_url, layout, tables, dms
) -> None:
    orders = TableName("silver", "sales_orders")

    race(sail_url, layout.root, str(orders))

    keys = [r["order_id"] for r in tables.read(orders).collect()]
    assert duplicates([(k,) for k in keys]) == []
    truth = {int(order_id) for order_id in dms.truth.tables["orders"]["order_id"]}
    assert set(keys) == truth
    quarantined = [
        (r["_source_file"], r["_source_row"]) for r in tables.read(quarantine_table(orders)).collect()
    ]
    assert duplicates(quarantined) == []


def test_writers_racing_on_an_incremental_scd1_apply_insert_each_new_order_once(
    sail_url, layout, landing, tables
) -> None:
    """The partitioned state's MERGE reads only the months its orders' changes name: writers
    inserting the same new orders read the same months, so one of their commits conflicts."""
    orders = TableName("silver", "sales_orders")
    simulation = simulate_retail(days=4, seed=8, customers=200, products=30, orders_per_day=30)
    write_landing(simulation, landing, delivered_before=simulation.start + timedelta(days=2))
    run_table(tables, "bronze.sales_orders")
    run_table(tables, str(orders))
    first = {r["order_id"] for r in tables.read(orders).collect()}
    write_landing(simulation, landing)
    run_table(tables, "bronze.sales_orders")

    race(sail_url, layout.root, str(orders))

    keys = [r["order_id"] for r in tables.read(orders).collect()]
    truth = {int(order_id) for order_id in simulation.truth.tables["orders"]["order_id"]}
    assert truth - first, "the later days insert new orders"
    assert duplicates([(k,) for k in keys]) == []
    assert set(keys) == truth


def test_writers_racing_to_insert_orders_of_a_month_the_table_lacks_insert_each_once(
    sail_url, layout, landing, tables
) -> None:
    """No row of the table is in the new orders' month: the MERGE must still read that month,
    where the writers insert, or none of them would see the others' commits."""
    orders = TableName("silver", "sales_orders")
    october = [
        {**order(i, "placed", 1), "order_ts": "2026-10-01 08:00:00", "dms_commit_ts": ts(1)} for i in (1, 2)
    ]
    november = [{**order(i, "placed", 3), "Op": "I", "dms_commit_ts": ts(3)} for i in range(10, 40)]
    dms_file(landing, "orders", "LOAD00000001.csv", october, full_load=True)
    run_table(tables, "bronze.sales_orders")
    run_table(tables, str(orders))
    dms_file(landing, "orders", "20261103-0900000000.csv", november)
    run_table(tables, "bronze.sales_orders")

    race(sail_url, layout.root, str(orders))

    keys = sorted(r["order_id"] for r in tables.read(orders).collect())
    assert keys == [1, 2, *range(10, 40)]


def test_writers_racing_to_rewrite_an_earlier_releases_table_partitioned_leave_one_copy(
    sail_url, layout, landing, tables
) -> None:
    """An unpartitioned orders table (an earlier release's) is rewritten whole by the next apply:
    writers racing on that rewrite leave each order once, partitioned."""
    orders = TableName("silver", "sales_orders")
    simulation = simulate_retail(days=4, seed=9, customers=200, products=30, orders_per_day=30)
    write_landing(simulation, landing, delivered_before=simulation.start + timedelta(days=2))
    run_table(tables, "bronze.sales_orders")
    run_table(tables, str(orders))
    as_an_earlier_release_wrote_it(tables, orders)
    write_landing(simulation, landing)
    run_table(tables, "bronze.sales_orders")

    race(sail_url, layout.root, str(orders))

    keys = [r["order_id"] for r in tables.read(orders).collect()]
    assert duplicates([(k,) for k in keys]) == []
    assert set(keys) == {int(order_id) for order_id in simulation.truth.tables["orders"]["order_id"]}
    assert "order_month" in tables.read(orders).columns


def test_writers_racing_to_close_versions_of_new_customers_write_each_version_once(
    sail_url, layout, landing, tables
) -> None:
    """Customers inserted and deleted in one delivery have only closed versions, which no current
    version of theirs leads a writer to read: the MERGE must read the closed versions then."""
    history = TableName("silver", "sales_customers_history")
    dms_file(
        landing,
        "customers",
        "LOAD00000001.csv",
        [{**customer(1, "a@x", "Oslo", "1"), "dms_commit_ts": ts(1)}],
        full_load=True,
    )
    run_table(tables, "bronze.sales_customers")
    run_table(tables, str(history))
    gone = [
        {**customer(i, f"{i}@x", "Oslo", "1"), "Op": op, "dms_commit_ts": ts(2, hour)}
        for i in range(10, 30)
        for op, hour in (("I", 9), ("D", 10))
    ]
    dms_file(landing, "customers", "20261102-0900000000.csv", gone)
    run_table(tables, "bronze.sales_customers")

    race(sail_url, layout.root, str(history))

    rows = [(r["customer_id"], r[START_AT]) for r in tables.read(history).collect()]
    assert duplicates(rows) == []
    assert sorted(key for key, _ in rows) == [1, *range(10, 30)]


def test_writers_racing_on_the_same_partitions_leave_one_copy_of_each_row(
    sail_url, layout, tables, dms
) -> None:
    for table in ("silver.sales_orders", "silver.sales_order_items"):
        run_table(tables, table)
    days = sorted({ts[:10] for ts in dms.truth.tables["orders"]["order_ts"]})
    window = (days[0], _next_day(days[-1]))

    race(sail_url, layout.root, "silver.sales_order_facts", *window)
    race(sail_url, layout.root, "silver.sales_order_facts", *window)  # replacing existing partitions

    facts = [r["order_id"] for r in tables.read(TableName("silver", "sales_order_facts")).collect()]
    assert duplicates([(f,) for f in facts]) == []
    assert set(facts) <= {int(o) for o in dms.truth.tables["orders"]["order_id"]}
    assert len(facts) == len({int(o) for o in dms.truth.tables["orders"]["order_id"]})


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def test_writers_racing_on_a_rebuilt_table_replace_its_quarantine_and_record_their_quality_once(
    sail_url, layout, landing, tables
) -> None:
    files = generate_customers(landing, rows=1_000, files=3, seed=32)
    run_table(tables, "bronze.customers")

    results = race(sail_url, layout.root, "silver.customers")

    raw = landed_records(files)
    without_id = int(raw["customer_id"].map(parse_id).isna().sum())
    assert tables.read(quarantine_table(TableName("silver", "customers"))).count() == without_id
    silver = [r["customer_id"] for r in tables.read(TableName("silver", "customers")).collect()]
    assert duplicates([(c,) for c in silver]) == []
    history = tables.read(DATA_QUALITY).where("asset = 'silver.customers'").collect()
    per_run = Counter((r["run_id"], r["expectation"]) for r in history)
    assert set(per_run.values()) == {1}, "each run records each expectation once"
    recorded_runs = {run for run, _ in per_run}
    assert len(recorded_runs) >= sum(r.error is None for r in results)


def test_writers_racing_on_a_table_rebuilt_from_staged_rows_leave_one_copy_and_record_once(
    sail_url, layout, landing, tables
) -> None:
    """gold.customer_segments is computed once into each writer's own staging, then written."""
    generate_customers(landing, rows=1_000, files=3, seed=33)
    run_table(tables, "bronze.customers")
    run_table(tables, "silver.customers")
    silver = tables.read(TableName("silver", "customers")).toPandas()
    expected = Counter(zip(silver["customer_segment"], silver["country"].fillna("UNKNOWN"), strict=True))

    results = race(sail_url, layout.root, "gold.customer_segments")

    gold = tables.read(TableName("gold", "customer_segments")).collect()
    assert {(r["customer_segment"], r["country"]): r["customers"] for r in gold} == dict(expected)
    assert len(gold) == len(expected), "one row per segment and country"
    history = tables.read(DATA_QUALITY).where("asset = 'gold.customer_segments'").collect()
    per_run = Counter((r["run_id"], r["expectation"]) for r in history)
    assert set(per_run.values()) == {1}, "each run records each expectation once"
    assert len({run for run, _ in per_run}) >= sum(r.error is None for r in results)
    staging = Path(tables.layout.staging_root(TableName("gold", "customer_segments")))
    assert not staging.exists() or not list(staging.iterdir()), "every writer removed its staged rows"
