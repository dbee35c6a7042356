"""The ingestion ledger: which landed files a bronze table holds, as a Delta table.

A batch is recorded twice. Before the bronze write, every file of the batch is appended
with state ``pending``; after it, the same files are appended with state ``committed``.
A run that dies in between leaves a pending batch. The next run settles it before
listing new files: if bronze holds rows of that batch (one Delta commit, so all of them
or none), the batch is committed; otherwise it is ``abandoned`` and its files are new
again. Either way no row is lost or duplicated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pyspark.sql import functions as F

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.files import LandingFile
from lakehouse_dagster.lake.layout import TableName

LEDGER_SCHEMA = (
    "batch_id STRING, file_path STRING, file_size BIGINT, file_modified_at TIMESTAMP, state STRING, "
    "outcome STRING, rows BIGINT, rescued_rows BIGINT, message STRING, recorded_at TIMESTAMP"
)

PENDING, COMMITTED, ABANDONED = "pending", "committed", "abandoned"
#: Outcomes of a file: its rows are in bronze, it had none, or it could not be parsed.
INGESTED, EMPTY, REJECTED = "ingested", "empty", "rejected"


def ledger_table(target: TableName) -> TableName:
    return TableName("ops", f"ingest_ledger__{target.layer}__{target.table}")


@dataclass(frozen=True)
class LedgerEntry:
    batch_id: str
    file: LandingFile
    outcome: str
    rows: int = 0
    rescued_rows: int = 0
    message: str | None = None


@dataclass(frozen=True)
class Recovery:
    committed: list[str]
    abandoned: list[str]


class IngestLedger:
    def __init__(self, tables: DeltaTables, target: TableName) -> None:
        self.tables = tables
        self.target = target
        self.name = ledger_table(target)

    # Reading ------------------------------------------------------------------------------

    def _records(self) -> list[dict]:
        if not self.tables.exists(self.name):
            return []
        return self.tables.read(self.name).toArrow().to_pylist()

    def ingested_files(self) -> dict[str, LedgerEntry]:
        """The latest committed entry of every file the ledger knows, by path."""
        latest: dict[str, dict] = {}
        for record in self._records():
            if record["state"] != COMMITTED:
                continue
            previous = latest.get(record["file_path"])
            if previous is None or record["recorded_at"] >= previous["recorded_at"]:
                latest[record["file_path"]] = record
        return {path: _entry(record) for path, record in latest.items()}

    # Writing ------------------------------------------------------------------------------

    def record(self, entries: Iterable[LedgerEntry], state: str) -> None:
        now = datetime.now(UTC)
        rows = [
            (
                entry.batch_id,
                entry.file.uri,
                entry.file.size,
                entry.file.modified_at,
                state,
                entry.outcome,
                entry.rows,
                entry.rescued_rows,
                entry.message,
                now,
            )
            for entry in entries
        ]
        if rows:
            self.tables.append(self.name, self.tables.spark.createDataFrame(rows, schema=LEDGER_SCHEMA))

    def mark_pending(self, entries: list[LedgerEntry]) -> None:
        self.record(entries, PENDING)

    def mark_committed(self, entries: list[LedgerEntry]) -> None:
        self.record(entries, COMMITTED)

    # Recovery -----------------------------------------------------------------------------

    def recover(self) -> Recovery:
        """Settle batches left pending by a run that died between the two ledger writes."""
        records = self._records()
        settled = {record["batch_id"] for record in records if record["state"] != PENDING}
        pending: dict[str, list[LedgerEntry]] = {}
        for record in records:
            if record["state"] == PENDING and record["batch_id"] not in settled:
                pending.setdefault(record["batch_id"], []).append(_entry(record))
        recovery = Recovery(committed=[], abandoned=[])
        for batch_id, entries in sorted(pending.items()):
            counts = self._bronze_counts(batch_id)
            if counts:
                self.mark_committed(
                    [
                        replace(
                            entry,
                            rows=counts.get(entry.file.uri, (0, 0))[0],
                            rescued_rows=counts.get(entry.file.uri, (0, 0))[1],
                        )
                        for entry in entries
                    ]
                )
                recovery.committed.append(batch_id)
            else:
                self.record(entries, ABANDONED)
                recovery.abandoned.append(batch_id)
        return recovery

    def _bronze_counts(self, batch_id: str) -> dict[str, tuple[int, int]]:
        if not self.tables.exists(self.target):
            return {}
        rows = (
            self.tables.read(self.target)
            .where(F.col("_batch_id") == batch_id)
            .groupBy("_source_file")
            .agg(F.count(F.lit(1)).alias("rows"), F.count("_rescued_data").alias("rescued"))
            .collect()
        )
        return {row["_source_file"]: (row["rows"], row["rescued"]) for row in rows}


def _entry(record: dict) -> LedgerEntry:
    modified_at = record["file_modified_at"]
    if modified_at.tzinfo is None:
        modified_at = modified_at.replace(tzinfo=UTC)
    return LedgerEntry(
        batch_id=record["batch_id"],
        file=LandingFile(modified_at=modified_at, uri=record["file_path"], size=record["file_size"]),
        outcome=record["outcome"],
        rows=record["rows"] or 0,
        rescued_rows=record["rescued_rows"] or 0,
        message=record["message"],
    )
