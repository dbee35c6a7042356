"""A unit of work runs in a separate process given only the table, the run and the deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.units import unit_for
from lakehouse_dagster.units.base import UnitResult

SILVER = TableName("silver", "customers")


def run_unit(table: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse_dagster.units", table, *extra],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_units_run_in_their_own_process_and_report_json(layout, landing, sail_url, tables) -> None:
    generate_customers(landing, rows=300, files=2, seed=3)
    env = {"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": layout.root, "LAKEHOUSE_SPARK_REMOTE": sail_url}

    results = {}
    for table in ("bronze.customers", "silver.customers", "gold.customer_segments"):
        completed = run_unit(table, env, "--as-of-date", "2026-11-26", "--run-id", "r1")
        assert completed.returncode == 0, completed.stderr[-3000:]
        results[table] = UnitResult.from_json(completed.stdout.strip().splitlines()[-1])

    silver = results["silver.customers"]
    assert silver.metadata["dagster/row_count"] == tables.read(SILVER).count()
    assert silver.metadata["lakehouse/as_of_date"] == "2026-11-26"
    outcomes = {check.name: check for check in silver.checks}
    assert set(outcomes) == {spec.name for spec in unit_for("silver.customers").check_specs()}
    assert outcomes["primary_key"].passed and outcomes["customer_segment_allowed"].passed
    assert (
        outcomes["customer_id_present"].metadata["failed_records"]
        == silver.metadata["lakehouse/rows_quarantined"]
    )
    assert silver.uri == layout.table_uri(SILVER)
    assert json.loads(results["bronze.customers"].to_json())["metadata"]["lakehouse/files_ingested"] == 2


def test_a_unit_that_cannot_run_fails_with_the_reason(layout, sail_url) -> None:
    env = {"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": layout.root, "LAKEHOUSE_SPARK_REMOTE": sail_url}

    missing_input = run_unit("silver.customers", env)
    unknown_table = run_unit("silver.nothing", env)

    assert missing_input.returncode != 0 and "bronze.customers does not exist yet" in missing_input.stderr
    assert unknown_table.returncode != 0 and "no table silver.nothing" in unknown_table.stderr
