"""The ingestion ledger records a batch's outcome even when a concurrent writer's events make
its insert conflict: otherwise a batch whose rows reached bronze would stay open, and the run that
wrote it would report it as another run's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lakehouse_dagster.ingest.ledger import COMMITTED, INGESTED, RELEASED, Claim, IngestLedger, LedgerEntry
from lakehouse_dagster.lake.delta import ConcurrentWriteError
from lakehouse_dagster.lake.files import LandingFile
from lakehouse_dagster.lake.layout import TableName

TARGET = TableName("bronze", "customers")


def claims(count: int) -> list[Claim]:
    moment = datetime(2026, 11, 1, tzinfo=UTC)
    return [Claim(LandingFile(moment, f"/landing/customers/{i}.csv", 10, f"fp{i}"), 1) for i in range(count)]


def conflicting(tables, monkeypatch, conflicts: int) -> list[int]:
    """Make the next ``conflicts`` inserts into the ledger raise as a concurrent MERGE would."""
    calls = []
    insert_missing = tables.insert_missing

    def flaky(name, frame, identity):
        calls.append(1)
        if len(calls) <= conflicts:
            raise ConcurrentWriteError(f"{name}: another writer committed to the table at the same moment")
        return insert_missing(name, frame, identity)

    monkeypatch.setattr(tables, "insert_missing", flaky)
    return calls


def test_a_commit_that_conflicts_is_recorded_on_a_retry(tables, monkeypatch) -> None:
    ledger = IngestLedger(tables, TARGET)
    won = ledger.claim(claims(3), "batch-1")
    assert set(ledger.open_batches()) == {"batch-1"}

    calls = conflicting(tables, monkeypatch, conflicts=2)
    ledger.commit("batch-1", [LedgerEntry(claim, INGESTED, rows=10) for claim in won])

    assert len(calls) == 3
    assert ledger.open_batches() == {}
    events = tables.read(ledger.name).where(f"event = '{COMMITTED}'").collect()
    assert sorted(e["file_path"] for e in events) == sorted(c.file.uri for c in won)


def test_a_commit_that_keeps_conflicting_fails_and_leaves_the_batch_open(tables, monkeypatch) -> None:
    ledger = IngestLedger(tables, TARGET)
    won = ledger.claim(claims(2), "batch-1")

    conflicting(tables, monkeypatch, conflicts=100)
    with pytest.raises(ConcurrentWriteError):
        ledger.commit("batch-1", [LedgerEntry(claim, INGESTED, rows=10) for claim in won])

    assert set(ledger.open_batches()) == {"batch-1"}  # the next run completes it


@pytest.mark.parametrize("release_recorded_first", [True, False])
def test_a_commit_outranks_a_release_of_the_same_attempt(tables, release_recorded_first: bool) -> None:
    """A failing run releases its batch (it found no rows in bronze) while another run completing
    the batch commits it: the file is ingested, whichever event the ledger holds first."""
    ledger = IngestLedger(tables, TARGET)
    batch = claims(2)
    ledger.claim(batch, "b1")

    def release() -> None:
        ledger.release("b1", batch, "OSError: the disk went away")

    def commit() -> None:
        ledger.commit("b1", [LedgerEntry(c, INGESTED, rows=3) for c in batch])

    for record in (release, commit) if release_recorded_first else (commit, release):
        record()
    events = {(row["file_path"], row["event"]) for row in tables.read(ledger.name).collect()}
    assert {event for _, event in events} >= {RELEASED, COMMITTED}
    states = ledger.states(c.file.uri for c in batch)
    assert {(path, state.event, state.outcome) for path, state in states.items()} == {
        (c.file.uri, COMMITTED, INGESTED) for c in batch
    }
