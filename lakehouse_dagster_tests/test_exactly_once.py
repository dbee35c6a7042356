"""Exactly once across a crash: a run killed after claiming its batch, or between the bronze
write and the ledger commit, neither duplicates nor loses rows on the next run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lakehouse_dagster.ingest.ledger import CLAIMED, COMMITTED
from lakehouse_dagster_tests.crash_during_ingest import CRASH_EXIT_CODE
from lakehouse_dagster_tests.oracle import landed_records
from lakehouse_dagster_tests.test_ingestion import TARGET, bronze_rows, ledger_rows, people, run_ingest


def crash_ingestion(sail_url: str, root: str, point: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "lakehouse_dagster_tests.crash_during_ingest", sail_url, root, point],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == CRASH_EXIT_CODE, completed.stderr[-2000:]


@pytest.fixture
def two_batches_landed(tables, landing, log):
    """One file already ingested; two more landed since."""
    first = people(landing, "a.csv", [[1, "a", "2024-01-01"], [2, "b", "2024-01-02"]])
    run_ingest(tables, log)
    later = [
        people(landing, f"b{i}.csv", [[10 + i, "x", "2024-02-01"], [20 + i, "y", "2024-02-02"]])
        for i in range(2)
    ]
    return [first, *later]


def test_crash_after_bronze_write_commits_the_batch_on_the_next_run(
    tables, layout, sail_url, log, two_batches_landed
) -> None:
    crash_ingestion(sail_url, layout.root, "after_bronze_write")
    rows_after_crash = len(bronze_rows(tables))
    bronze_version = tables.version(TARGET)

    report = run_ingest(tables, log)

    expected = landed_records(two_batches_landed)
    assert rows_after_crash == len(expected), "the crashed run's bronze commit holds the new rows"
    assert len(report.recovered_batches) == 1 and report.files_ingested == 0
    assert tables.version(TARGET) == bronze_version, "recovery must not write the rows again"
    rows = bronze_rows(tables)
    assert sorted(r["id"] for r in rows) == sorted(int(v) for v in expected["id"])
    committed_rows = {
        r["file_path"]: r["rows"]
        for r in ledger_rows(tables)
        if r["batch_id"] in report.recovered_batches and r["event"] == COMMITTED
    }
    assert committed_rows == {str(path): 2 for path in two_batches_landed[1:]}
    assert run_ingest(tables, log).files_ingested == 0


def test_crash_after_claiming_completes_the_claimed_batch_on_the_next_run(
    tables, layout, sail_url, log, two_batches_landed
) -> None:
    crash_ingestion(sail_url, layout.root, "after_claim")
    claimed = {r["batch_id"] for r in ledger_rows(tables) if r["event"] == CLAIMED}
    settled = {r["batch_id"] for r in ledger_rows(tables) if r["event"] == COMMITTED}
    assert len(claimed - settled) == 1, "the crashed run left one batch open"

    report = run_ingest(tables, log)

    assert report.recovered_batches == sorted(claimed - settled)
    assert report.files_ingested == 2
    expected = landed_records(two_batches_landed)
    assert sorted(r["id"] for r in bronze_rows(tables)) == sorted(int(v) for v in expected["id"])
    assert run_ingest(tables, log).files_ingested == 0
