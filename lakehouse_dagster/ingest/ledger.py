"""The ingestion ledger: which landed files a bronze table holds, as a Delta table of events.

Every file goes through *attempts*. An attempt starts with a ``claimed`` event in a batch and
ends with ``committed`` (with the file's outcome: ingested, empty or rejected) or
``released`` (the batch failed before its rows were written: the file is free again).

- **Claims are atomic.** A claim is an insert-only MERGE on (file, attempt): of two writers
  claiming the same file at the same moment, one wins and the other gets the files it won
  (possibly none). No file is ever in two batches.
- **Bronze commits once per batch.** The bronze write carries the batch id as its Delta
  application transaction id, so whoever completes a batch (its owner, or a later run
  recovering it) writes its rows once.
- **Nothing is left open.** A batch claimed by a run that died is found by the next run
  (``open_batches``) and completed there.

Lookups read the events of the files in question only, never the whole ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pyspark.sql import functions as F

from lakehouse_dagster.joins import matching
from lakehouse_dagster.lake.delta import ConcurrentWriteError, DeltaTables
from lakehouse_dagster.lake.files import LandingFile
from lakehouse_dagster.lake.layout import TableName

T = TypeVar("T")

LEDGER_SCHEMA = (
    "file_path STRING, attempt INT, batch_id STRING, event STRING, file_size BIGINT, "
    "file_modified_at TIMESTAMP, fingerprint STRING, content_hash STRING, outcome STRING, rows BIGINT, "
    "rescued_rows BIGINT, message STRING, recorded_at TIMESTAMP"
)
CLAIMED, COMMITTED, RELEASED = "claimed", "committed", "released"
#: Outcomes of a file: its rows are in bronze, it had none, or it could not be parsed.
INGESTED, EMPTY, REJECTED = "ingested", "empty", "rejected"
#: The identity of an event: a second claim of the same attempt of a file loses, and a second
#: commit (or release) of it adds nothing.
CLAIM_IDENTITY = ("file_path", "attempt", "event")


def ledger_table(target: TableName) -> TableName:
    return TableName("ops", f"ingest_ledger__{target.layer}__{target.table}")


@dataclass(frozen=True)
class Claim:
    """A file in a batch: the attempt it is, and what the file looked like when claimed."""

    file: LandingFile
    attempt: int
    batch_id: str = ""


@dataclass(frozen=True)
class LedgerEntry:
    """A file's outcome in a batch."""

    claim: Claim
    outcome: str
    rows: int = 0
    rescued_rows: int = 0
    message: str | None = None
    content_hash: str | None = None


@dataclass(frozen=True)
class FileState:
    """The latest attempt of a file, as the ledger knows it."""

    attempt: int
    event: str
    outcome: str | None
    fingerprint: str
    content_hash: str | None


class IngestLedger:
    def __init__(self, tables: DeltaTables, target: TableName) -> None:
        self.tables = tables
        self.target = target
        self.name = ledger_table(target)

    # Reading ------------------------------------------------------------------------------

    def states(self, paths: Iterable[str]) -> dict[str, FileState]:
        """The latest attempt of each of ``paths`` that the ledger knows."""
        paths = list(paths)
        if not paths or not self.tables.exists(self.name):
            return {}
        events = self.tables.lookup(self.name, "file_path", paths).toArrow().to_pylist()
        latest: dict[str, dict] = {}
        # A commit outranks a release of the same attempt: a run that failed may release its
        # batch (finding no rows in bronze) just as another run completing it commits.
        order = {CLAIMED: 0, RELEASED: 1, COMMITTED: 2}
        for event in events:
            previous = latest.get(event["file_path"])
            rank = (event["attempt"], order[event["event"]])
            if previous is None or rank > (previous["attempt"], order[previous["event"]]):
                latest[event["file_path"]] = event
        return {
            path: FileState(e["attempt"], e["event"], e["outcome"], e["fingerprint"], e["content_hash"])
            for path, e in latest.items()
        }

    def open_batches(self) -> dict[str, list[Claim]]:
        """Batches claimed and neither committed nor released: their writer died, or is
        still writing. Completing them twice is harmless; leaving them open would lose files."""
        if not self.tables.exists(self.name):
            return {}
        ledger = self.tables.read(self.name)
        open_ids = (
            ledger.groupBy("batch_id")
            .agg(F.max(F.when(F.col("event") != CLAIMED, 1).otherwise(0)).alias("settled"))
            .where(F.col("settled") == 0)
            .select("batch_id")
        )
        claims = matching(ledger.where(F.col("event") == CLAIMED), open_ids, ["batch_id"])
        batches: dict[str, list[Claim]] = {}
        for row in claims.orderBy("batch_id", "file_path").toArrow().to_pylist():
            batches.setdefault(row["batch_id"], []).append(_claim(row))
        return batches

    # Writing ------------------------------------------------------------------------------

    def claim(self, claims: Sequence[Claim], batch_id: str) -> list[Claim]:
        """Claim ``claims`` for ``batch_id``; return the ones won (a concurrent writer may win others)."""
        if not claims:
            return []
        rows = [self._row(c, batch_id, CLAIMED) for c in claims]
        frame = self.tables.spark.createDataFrame(rows, schema=LEDGER_SCHEMA)
        self.tables.insert_missing(self.name, frame, CLAIM_IDENTITY)
        won = self.tables.read(self.name).where(
            (F.col("batch_id") == F.lit(batch_id)) & (F.col("event") == CLAIMED)
        )
        return sorted((_claim(row) for row in won.toArrow().to_pylist()), key=lambda c: c.file)

    def commit(self, batch_id: str, entries: Sequence[LedgerEntry]) -> None:
        """Record the batch's outcomes, once: a run that completed the same batch may have already."""
        self._record(
            [
                self._row(
                    e.claim,
                    batch_id,
                    COMMITTED,
                    outcome=e.outcome,
                    rows=e.rows,
                    rescued_rows=e.rescued_rows,
                    message=e.message,
                    content_hash=e.content_hash,
                )
                for e in entries
            ]
        )

    def release(self, batch_id: str, claims: Sequence[Claim], reason: str) -> None:
        self._record([self._row(c, batch_id, RELEASED, message=reason) for c in claims])

    def _record(self, rows: list[tuple]) -> None:
        """Insert the events not recorded yet. Retried when a concurrent writer's events made the
        insert conflict: it inserts only what is missing, so a retry never records twice (a
        commit that failed here would leave its batch open after its rows reached bronze)."""
        if rows:
            frame = self.tables.spark.createDataFrame(rows, schema=LEDGER_SCHEMA)
            with_conflict_retries(lambda: self.tables.insert_missing(self.name, frame, CLAIM_IDENTITY))

    @staticmethod
    def _row(
        claim: Claim,
        batch_id: str,
        event: str,
        *,
        outcome: str | None = None,
        rows: int | None = None,
        rescued_rows: int | None = None,
        message: str | None = None,
        content_hash: str | None = None,
    ) -> tuple:
        landed = claim.file
        return (
            landed.uri,
            claim.attempt,
            batch_id,
            event,
            landed.size,
            landed.modified_at,
            landed.fingerprint,
            content_hash,
            outcome,
            rows,
            rescued_rows,
            message,
            datetime.now(UTC),
        )


def claim_with_retries(
    ledger: IngestLedger, claims: Sequence[Claim], batch_id: str, attempts: int = 5
) -> list[Claim]:
    """Claim, retrying when a concurrent claim made the MERGE conflict: the retry sees the
    other writer's claims and wins only what is left."""
    return with_conflict_retries(lambda: ledger.claim(claims, batch_id), attempts)


def with_conflict_retries(write: Callable[[], T], attempts: int = 5) -> T:
    """``write()``, again after a short random pause when it raised ``ConcurrentWriteError``."""
    import random
    import time

    for attempt in range(attempts - 1):
        try:
            return write()
        except ConcurrentWriteError:
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    return write()


def _claim(row: dict) -> Claim:
    modified_at = row["file_modified_at"]
    if modified_at is not None and modified_at.tzinfo is None:
        modified_at = modified_at.replace(tzinfo=UTC)
    landed = LandingFile(modified_at, row["file_path"], row["file_size"], row["fingerprint"] or "")
    return Claim(landed, row["attempt"], row["batch_id"])
