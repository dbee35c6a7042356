"""A unit of work runs in a separate process given only the table, the run and the deployment."""

from __future__ import annotations

import os
import subprocess
import sys

from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster_tests.oracle import expected_silver_customers, landed_records
from lakehouse_dagster_tests.units import AS_OF


def run_unit(table: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse_dagster.units", table, *extra],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def report(completed: subprocess.CompletedProcess) -> UnitResult:
    return UnitResult.from_json(completed.stdout.strip().splitlines()[-1])


def test_units_run_in_their_own_process_and_report_json(layout, landing, sail_url) -> None:
    files = generate_customers(landing, rows=300, files=2, seed=3)
    env = {"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": layout.root, "LAKEHOUSE_SPARK_REMOTE": sail_url}

    results = {}
    for table in ("bronze.customers", "silver.customers", "gold.customer_segments"):
        completed = run_unit(table, env, "--as-of-date", AS_OF.isoformat(), "--run-id", "r1")
        assert completed.returncode == 0, completed.stderr[-3000:]
        results[table] = report(completed)

    raw = landed_records(files)
    silver = results["silver.customers"]
    assert silver.metadata["dagster/row_count"] == len(expected_silver_customers(raw, AS_OF))
    assert silver.metadata["lakehouse/as_of_date"] == AS_OF.isoformat()
    outcomes = {check.name: check for check in silver.checks}
    assert set(outcomes) == {spec.name for spec in REGISTRY.table("silver.customers").check_specs()}
    assert outcomes["primary_key"].passed and outcomes["customer_segment_allowed"].passed
    without_id = int(raw["customer_id"].map(lambda v: not str(v).strip().isdigit()).sum())
    assert outcomes["customer_id_present"].metadata["failed_records"] == without_id
    assert silver.uri == f"{layout.root}/silver/customers", "the documented layout: <root>/<layer>/<table>"
    bronze = results["bronze.customers"]
    assert (bronze.metadata["lakehouse/files_ingested"], bronze.metadata["dagster/row_count"]) == (
        2,
        len(raw),
    )


def test_a_unit_that_cannot_run_fails_with_the_reason(layout, sail_url) -> None:
    env = {"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": layout.root, "LAKEHOUSE_SPARK_REMOTE": sail_url}

    missing_input = run_unit("silver.customers", env)
    unknown_table = run_unit("silver.nothing", env)

    assert missing_input.returncode == 1 and "bronze.customers does not exist yet" in missing_input.stderr
    assert report(missing_input).error.kind == "TableNotFoundError"
    assert unknown_table.returncode == 2 and "no table silver.nothing" in unknown_table.stderr


def test_the_request_can_come_on_stdin(layout) -> None:
    env = {"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": layout.root}
    request = UnitRequest("silver.nothing", AS_OF).to_json()  # as the subprocess runner sends it

    completed = subprocess.run(
        [sys.executable, "-m", "lakehouse_dagster.units", "--request", "-"],
        input=request,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 2 and "no table silver.nothing" in completed.stderr


def test_a_partition_range_that_holds_no_day_or_a_table_without_days_is_refused_before_it_starts(
    tmp_path,
) -> None:
    env = {"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": str(tmp_path / "lake")}
    window = ("--partition-start", "2026-11-15", "--partition-end")

    unpartitioned = run_unit("silver.sales_orders", env, *window, "2026-11-16")
    empty = run_unit("silver.sales_order_facts", env, *window, "2026-11-15")

    assert unpartitioned.returncode == 2 and unpartitioned.stdout == ""
    assert "silver.sales_orders is not partitioned by day" in unpartitioned.stderr
    assert empty.returncode == 2 and "from 2026-11-15 to 2026-11-15 holds no day" in empty.stderr
    assert not (tmp_path / "lake").exists(), "nothing started"
