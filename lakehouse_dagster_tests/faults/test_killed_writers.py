"""A process killed at any step of a table's write, then run again, leaves the tables a run
that was never killed leaves: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import deltalake
import pandas as pd
import pytest

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.quality.history import DATA_QUALITY
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster.units.request import PartitionWindow
from lakehouse_dagster_tests.faults.crash import CRASH_EXIT_CODE
from lakehouse_dagster_tests.units import as_an_earlier_release_wrote_it, run_table

VOLATILE = ["_ingested_at", "_batch_id", "_run_id", "_quarantined_at"]
BRONZE = [f"bronze.sales_{s}" for s in ("customers", "products", "orders", "order_items")]


def frame(tables: DeltaTables, name: TableName) -> pd.DataFrame:
    if not tables.exists(name):
        return pd.DataFrame()
    data = tables.read(name).toPandas().drop(columns=VOLATILE, errors="ignore")
    data = data.apply(
        lambda c: c.map(lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
    )
    return data.sort_values(list(data.columns)).reset_index(drop=True)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("killed") / "landing"
    simulation = simulate_retail(days=3, seed=5, customers=150, products=25, orders_per_day=25)
    write_landing(simulation, folder)
    generate_customers(folder, rows=600, files=2, seed=33)
    return folder


def lake(spark, tmp_path: Path, landing: Path, name: str) -> DeltaTables:
    return DeltaTables(spark, LakeLayout.local(str(tmp_path / name), str(landing)))


def build(tables: DeltaTables, names: list[str], window: tuple[str, str] | None = None) -> None:
    for name in names:
        days = (
            PartitionWindow(*map(date.fromisoformat, window)) if window and name.endswith("facts") else None
        )
        run_table(tables, name, partition=days)


CRASH_COMMAND = (sys.executable, "-m", "lakehouse_dagster_tests.faults.crash")


def crash_then_rerun(
    crashed: DeltaTables,
    sail_url: str,
    table: str,
    target: str,
    when: str,
    window: tuple[str, str] | None = None,
) -> None:
    """Run ``table``'s unit in a process killed at ``target`` (``before`` or ``after`` its first
    call), then run it again to completion."""
    completed = subprocess.run(
        [*CRASH_COMMAND, sail_url, crashed.layout.root, table, target, when, *(window or ())],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LAKEHOUSE_LANDING": crashed.layout.landing},
    )
    assert completed.returncode == CRASH_EXIT_CODE, completed.stderr[-3000:]
    build(crashed, [table], window)


def assert_same_table_and_quarantine(crashed: DeltaTables, clean: DeltaTables, table: str) -> None:
    name = TableName.parse(table)
    for compared in (name, quarantine_table(name)):
        pd.testing.assert_frame_equal(frame(crashed, compared), frame(clean, compared), obj=str(compared))


WINDOW = ("2026-11-20", "2026-11-27")
CASES = {
    # table, what it needs first, where the process dies
    "bronze file moved into the table, before its commit": (
        "bronze.sales_orders",
        [],
        "lakehouse_dagster.lake.adopt:move_into_table",
        "after",
    ),
    "bronze committed, before the ledger records it": (
        "bronze.sales_orders",
        [],
        "lakehouse_dagster.lake.delta:DeltaRsLog.append_staged",
        "after",
    ),
    "cdc first build's files moved into the table, before its commit": (
        "silver.sales_orders",
        BRONZE,
        "lakehouse_dagster.lake.adopt:move_into_table",
        "after",
    ),
    "cdc first commit, before quarantine": (
        "silver.sales_orders",
        BRONZE,
        "lakehouse_dagster.cdc.merges:create",
        "after",
    ),
    "cdc quarantine, before progress": (
        "silver.sales_orders",
        BRONZE,
        "lakehouse_dagster.units.context:add_to_quarantine",
        "after",
    ),
    "cdc progress, before quality history": (
        "silver.sales_orders",
        BRONZE,
        "lakehouse_dagster.cdc.apply:_record_applied",
        "after",
    ),
    "scd2 first commit, before progress": (
        "silver.sales_customers_history",
        BRONZE,
        "lakehouse_dagster.cdc.merges:create",
        "after",
    ),
    "rebuilt table, before its quarantine": (
        "silver.customers",
        ["bronze.customers"],
        "lakehouse_dagster.units.context:replace_quarantine",
        "before",
    ),
    "partitions' files moved into the table, before their commit": (
        "silver.sales_order_facts",
        [*BRONZE, "silver.sales_orders", "silver.sales_order_items"],
        "lakehouse_dagster.lake.adopt:move_into_table",
        "after",
    ),
    "partitions written, before the checks and history": (
        "silver.sales_order_facts",
        [*BRONZE, "silver.sales_orders", "silver.sales_order_items"],
        "lakehouse_dagster.lake.delta:DeltaTables.replace_window",
        "after",
    ),
    "table rebuilt from its staged rows, before its quality history": (
        "gold.customer_segments",
        ["bronze.customers", "silver.customers"],
        "lakehouse_dagster.lake.delta:DeltaTables.overwrite",
        "after",
    ),
    "quality history": (
        "gold.customer_segments",
        ["bronze.customers", "silver.customers"],
        "lakehouse_dagster.units.context:record_results",
        "after",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_write_killed_at_any_step_and_run_again_ends_as_if_never_killed(
    case, spark, sail_url, tmp_path, landing
) -> None:
    table, needs, target, when = CASES[case]
    window = WINDOW if table.endswith("facts") else None
    clean, crashed = lake(spark, tmp_path, landing, "clean"), lake(spark, tmp_path, landing, "crashed")
    build(clean, [*needs, table], window)
    build(crashed, needs, window)

    crash_then_rerun(crashed, sail_url, table, target, when, window)
    assert_same_table_and_quarantine(crashed, clean, table)
    history = crashed.read(DATA_QUALITY).where(f"asset = '{table}'").toPandas()
    # A partitioned write records each day: once per run, expectation and day.
    recorded = history.groupby(["run_id", "expectation", "partition"], dropna=False).size()
    assert not recorded.gt(1).any(), "each run records once"


# An incremental CDC apply (the table built, then the next day's DMS files) killed at each step.
INCREMENTAL_CASES = {
    # table, where the process dies
    "scd1 changes staged, before its MERGE": (
        "silver.sales_orders",
        "lakehouse_dagster.cdc.merges:merge_current_state",
        "before",
    ),
    "scd1 MERGE committed, before quarantine and progress": (
        "silver.sales_orders",
        "lakehouse_dagster.lake.delta:DeltaTables.merge",
        "after",
    ),
    "scd1 progress, before quality history": (
        "silver.sales_orders",
        "lakehouse_dagster.cdc.apply:_record_applied",
        "after",
    ),
    "scd2 changes staged, before its MERGE": (
        "silver.sales_customers_history",
        "lakehouse_dagster.cdc.merges:merge_history",
        "before",
    ),
    "scd2 MERGE committed, before quarantine and progress": (
        "silver.sales_customers_history",
        "lakehouse_dagster.cdc.merges:merge_history",
        "after",
    ),
}


@pytest.fixture(scope="module")
def incremental_simulation():
    return simulate_retail(days=3, seed=9, customers=150, products=25, orders_per_day=25)


@pytest.mark.parametrize("case", list(INCREMENTAL_CASES))
def test_an_incremental_cdc_apply_killed_at_any_step_and_run_again_ends_as_if_never_killed(
    case, spark, sail_url, tmp_path, incremental_simulation
) -> None:
    table, target, when = INCREMENTAL_CASES[case]
    simulation, landing = incremental_simulation, tmp_path / "landing"
    clean, crashed = lake(spark, tmp_path, landing, "clean"), lake(spark, tmp_path, landing, "crashed")
    assert write_landing(simulation, landing, delivered_before=simulation.start + timedelta(days=2))
    for tables in (clean, crashed):
        build(tables, [*BRONZE, table])
    assert write_landing(simulation, landing)  # the rest
    build(clean, [*BRONZE, table])
    build(crashed, BRONZE)

    crash_then_rerun(crashed, sail_url, table, target, when)
    assert_same_table_and_quarantine(crashed, clean, table)
    # Both lakes' builds share a run id; the killed run's records (none or one each) are its own.
    crashed_records, clean_records = recorded(crashed, table), recorded(clean, table)
    killed_run = crashed_records[crashed_records.index.get_level_values("run_id") == "crashed"]
    assert not killed_run.gt(1).any(), "each run records once"
    assert crashed_records.drop("crashed", level="run_id", errors="ignore").equals(clean_records)


def recorded(tables: DeltaTables, table: str) -> pd.Series:
    """The quality history's records of ``table`` by run, expectation and partition."""
    history = tables.read(DATA_QUALITY).where(f"asset = '{table}'").toPandas()
    return history.groupby(["run_id", "expectation", "partition"], dropna=False).size()


# An earlier release's unpartitioned state, rewritten partitioned by the next apply, killed.
REWRITE_CASES = {
    # table, where the process dies
    "scd1 rewrite computed, before its commit": ("silver.sales_orders", "before"),
    "scd1 rewrite committed, before quarantine and progress": ("silver.sales_orders", "after"),
    "scd2 rewrite committed, before quarantine and progress": ("silver.sales_customers_history", "after"),
}


@pytest.mark.parametrize("case", list(REWRITE_CASES))
def test_a_rewrite_of_an_earlier_releases_state_killed_and_run_again_ends_as_if_never_killed(
    case, spark, sail_url, tmp_path, incremental_simulation
) -> None:
    table, when = REWRITE_CASES[case]
    simulation, landing = incremental_simulation, tmp_path / "landing"
    clean, crashed = lake(spark, tmp_path, landing, "clean"), lake(spark, tmp_path, landing, "crashed")
    assert write_landing(simulation, landing, delivered_before=simulation.start + timedelta(days=2))
    for tables in (clean, crashed):
        build(tables, [*BRONZE, table])
        as_an_earlier_release_wrote_it(tables, TableName.parse(table))
    assert write_landing(simulation, landing)  # the rest
    build(clean, [*BRONZE, table])
    build(crashed, BRONZE)

    crash_then_rerun(crashed, sail_url, table, "lakehouse_dagster.cdc.merges:rewrite", when)
    assert_same_table_and_quarantine(crashed, clean, table)
    name = TableName.parse(table)
    assert deltalake.DeltaTable(crashed.uri(name)).metadata().partition_columns
    assert (
        recorded(crashed, table)
        .drop("crashed", level="run_id", errors="ignore")
        .equals(recorded(clean, table))
    )
