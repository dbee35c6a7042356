"""Per-shard checkpoints of a stream table, claimed before and committed after its bronze commit.

``ops.stream_checkpoints__<layer>__<table>`` is a Delta table of events, one row per shard of
a micro-batch, in the file ledger's protocol:

1. **claim**: micro-batch ``batch_seq`` claims, for each shard it read, the range
   (``from_sequence``, ``to_sequence``]; the claim is an insert-only MERGE on (``shard_id``,
   ``from_position``), the position the range starts after (``""`` at the shard's start). A
   shard's range starting at a position is claimed once: of two writers that read a shard from
   the same position (two runs at once, whatever their ``batch_seq``), one wins and the other
   raises ``ClaimedElsewhereError``;
2. the bronze rows are appended in one Delta commit carrying the digest of the claimed ranges
   as its application transaction id: a replay lands once, whatever its ``batch_seq``;
3. **commit**: the same rows with ``event = committed``.

A micro-batch claimed and never committed (its writer died) is *open*: the next run reads
exactly its ranges again and completes it under the same id, or only commits it if its rows
are in bronze already. A shard's position is the end of its latest committed range.

A writer that loses a claim on one shard may have won it on others: those ranges stay claimed
(no other writer covers them, since their start is claimed) and are completed as an open
micro-batch by the next run.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import functions as F

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.stream.kinesis import Position

CHECKPOINT_SCHEMA = (
    "batch_seq BIGINT, batch_id STRING, event STRING, shard_id STRING, from_sequence STRING, "
    "to_sequence STRING, records BIGINT, finished BOOLEAN, recorded_at TIMESTAMP, from_position STRING"
)
CLAIMED, COMMITTED = "claimed", "committed"
#: A claim is unique per shard and start position (never null, unlike ``from_sequence``).
CLAIM_IDENTITY = ("shard_id", "from_position", "event")
#: ``from_position`` of a range read from the shard's start (a sequence number is never empty).
SHARD_START = ""


def checkpoint_table(target: TableName) -> TableName:
    return TableName("ops", f"stream_checkpoints__{target.layer}__{target.table}")


@dataclass(frozen=True)
class ShardRange:
    """A shard's records in a micro-batch: after ``from_sequence``, up to ``to_sequence`` included."""

    shard_id: str
    from_sequence: str | None
    to_sequence: str | None
    records: int
    finished: bool

    @property
    def from_position(self) -> str:
        return SHARD_START if self.from_sequence is None else self.from_sequence


@dataclass(frozen=True)
class MicroBatch:
    batch_seq: int
    batch_id: str
    ranges: tuple[ShardRange, ...]

    @property
    def token(self) -> str:
        """The bronze commit's application transaction id: the ranges' digest, without the
        sequence, so that the same ranges land once whatever micro-batch carries them."""
        return self.batch_id.partition("-")[2] or self.batch_id


def batch_id_of(stream: str, batch_seq: int, ranges: Sequence[ShardRange]) -> str:
    """``<batch_seq>-<digest of the shard ranges>``: ordered by sequence, and the same for a replay."""
    text = "|".join(
        f"{r.shard_id}:{r.from_sequence}:{r.to_sequence}" for r in sorted(ranges, key=lambda r: r.shard_id)
    )
    digest = hashlib.sha256(f"{stream}|{text}".encode()).hexdigest()[:16]
    return f"{batch_seq:012d}-{digest}"


class ClaimedElsewhereError(RuntimeError):
    """Another writer claimed this micro-batch first; it ingests these records."""


class Checkpoints:
    def __init__(self, tables: DeltaTables, target: TableName) -> None:
        self.tables = tables
        self.name = checkpoint_table(target)

    def _events(self):
        return self.tables.read(self.name) if self.tables.exists(self.name) else None

    def positions(self) -> tuple[dict[str, Position], int]:
        """Each shard's committed position, and the next micro-batch's sequence number."""
        events = self._events()
        if events is None:
            return {}, 0
        latest = (
            events.where(F.col("event") == COMMITTED)
            .groupBy("shard_id")
            .agg(F.max("batch_seq").alias("batch_seq"))
            .join(events.where(F.col("event") == COMMITTED), ["shard_id", "batch_seq"])
            .select("shard_id", "to_sequence", "finished")
        )
        positions = {
            row["shard_id"]: Position(row["to_sequence"], bool(row["finished"]))
            for row in latest.toArrow().to_pylist()
        }
        next_seq = events.agg(F.max("batch_seq")).first()[0]
        return positions, (next_seq + 1) if next_seq is not None else 0

    def open_batches(self) -> list[MicroBatch]:
        """Micro-batches claimed and not committed, oldest first."""
        events = self._events()
        if events is None:
            return []
        committed = events.where(F.col("event") == COMMITTED).select("batch_id").distinct()
        open_rows = (
            events.where(F.col("event") == CLAIMED)
            .join(committed, "batch_id", "left_anti")
            .orderBy("batch_seq", "batch_id", "shard_id")
            .toArrow()
            .to_pylist()
        )
        batches: dict[str, MicroBatch] = {}
        for row in open_rows:
            batch = batches.get(row["batch_id"]) or MicroBatch(row["batch_seq"], row["batch_id"], ())
            batches[row["batch_id"]] = MicroBatch(
                batch.batch_seq, batch.batch_id, (*batch.ranges, _range(row))
            )
        return list(batches.values())

    def claim(self, batch: MicroBatch) -> None:
        """Claim ``batch``'s ranges; raise ``ClaimedElsewhereError`` if another writer claimed one
        of them (a range of the same shard from the same position) or the same sequence."""
        rows = [self._row(batch, r, CLAIMED) for r in batch.ranges]
        frame = self.tables.spark.createDataFrame(rows, CHECKPOINT_SCHEMA)
        self.tables.insert_missing(self.name, frame, CLAIM_IDENTITY)
        owners = {row[0] for row in self._rivals(batch).select("batch_id").distinct().collect()}
        if owners != {batch.batch_id}:
            raise ClaimedElsewhereError(
                f"{self.name}: micro-batch {batch.batch_seq} overlaps micro-batch(es) another writer "
                f"claimed ({', '.join(sorted(owners - {batch.batch_id}))}); it ingests those records"
            )

    def _rivals(self, batch: MicroBatch):
        """The claims of ``batch``'s sequence, or of one of its shards from the same position."""
        same_start = [
            (F.col("shard_id") == F.lit(r.shard_id)) & (F.col("from_position") == F.lit(r.from_position))
            for r in batch.ranges
        ]
        overlapping = reduce(operator.or_, same_start, F.col("batch_seq") == F.lit(batch.batch_seq))
        return self.tables.read(self.name).where((F.col("event") == CLAIMED) & overlapping)

    def commit(self, batch: MicroBatch) -> None:
        rows = [self._row(batch, r, COMMITTED) for r in batch.ranges]
        frame = self.tables.spark.createDataFrame(rows, CHECKPOINT_SCHEMA)
        # aligned: a table written before ``from_position`` existed gains the column first.
        self.tables.append(self.name, self.tables.aligned(self.name, frame))

    @staticmethod
    def _row(batch: MicroBatch, shard: ShardRange, event: str) -> tuple:
        return (
            batch.batch_seq,
            batch.batch_id,
            event,
            shard.shard_id,
            shard.from_sequence,
            shard.to_sequence,
            shard.records,
            shard.finished,
            datetime.now(UTC),
            shard.from_position,
        )


def positions_after(positions: Mapping[str, Position], ranges: Sequence[ShardRange]) -> dict[str, Position]:
    moved = dict(positions)
    for shard in ranges:
        moved[shard.shard_id] = Position(shard.to_sequence, shard.finished)
    return moved


def _range(row: dict) -> ShardRange:
    return ShardRange(
        row["shard_id"], row["from_sequence"], row["to_sequence"], row["records"], row["finished"]
    )
