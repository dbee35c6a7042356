"""Per-shard checkpoints of a stream table, claimed before and committed after its bronze commit.

``ops.stream_checkpoints__<layer>__<table>`` is a Delta table of events, one row per shard of
a micro-batch, in the file ledger's protocol:

1. **claim**: micro-batch ``batch_seq`` claims, for each shard it read, the range
   (``from_sequence``, ``to_sequence``], and its sequence number itself, in one insert-only MERGE
   on (``shard_id``, ``from_position``, ``event``): a range by the position it starts after
   (``""`` at the shard's start), the sequence by a row of ``shard_id`` ``SEQUENCE_CLAIM``. Each
   row names its writer (``claimant``, random per claim) and how many ranges the batch has
   (``ranges``). A range from a position, and a sequence number, are claimed once: the writer
   that holds *all* its claims afterwards goes on; any other (another run read a shard from the
   same position, or took the same ``batch_seq``) deletes the rows it inserted and raises
   ``ClaimedElsewhereError``, before writing anything to bronze;
2. the bronze rows are appended in one Delta commit carrying the digest of the claimed ranges
   as its application transaction id: a replay lands once, whatever its ``batch_seq``;
3. **commit**: the same rows with ``event = committed``.

A micro-batch claimed and never committed is *open*:

- claimed in full (a claim row per range, and its sequence's), no other batch holds any of its
  claims: its writer won, then died, or is still writing. The next run reads exactly its ranges
  again and completes it under the same id (the same token, so its rows land in bronze once),
  or only commits it if bronze has them;
- claimed in part (fewer rows than ``ranges + 1``), its writer lost a claim and never wrote to
  bronze, but died before deleting what it had claimed: the batch is *abandoned*. The next run
  *releases* it (deletes its claims) and reads its records again in a new micro-batch, whose
  ``batch_seq`` is greater than any in bronze. Completing it instead could land a batch whose id
  sorts before one that a reader following ``_batch_id`` (silver.events) has applied already.

Claims are deleted only by the writer that inserted them when it lost, or by the release of a
batch claimed in part: a batch claimed in full is never released, so a winner still writing
keeps its claims, and whoever completes it writes the same rows under the same token. Rows of a
table written before ``ranges`` existed read null: such a batch counts as claimed in full.
A shard's position is the end of its latest committed range.
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.ledger import with_conflict_retries
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.stream.kinesis import Position

CHECKPOINT_SCHEMA = (
    "batch_seq BIGINT, batch_id STRING, event STRING, shard_id STRING, from_sequence STRING, "
    "to_sequence STRING, records BIGINT, finished BOOLEAN, recorded_at TIMESTAMP, from_position STRING, "
    "ranges INT, claimant STRING"
)
CLAIMED, COMMITTED = "claimed", "committed"
#: A claim is unique per shard and start position (never null, unlike ``from_sequence``).
CLAIM_IDENTITY = ("shard_id", "from_position", "event")
#: ``from_position`` of a range read from the shard's start (a sequence number is never empty).
SHARD_START = ""
#: ``shard_id`` of the claim of a ``batch_seq`` (its ``from_position``): no Kinesis shard's id.
SEQUENCE_CLAIM = "#batch_seq"


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
    #: The writer of its claims, when read from them (two runs may build the same batch id).
    claimant: str | None = field(default=None, compare=False)

    @property
    def token(self) -> str:
        """The bronze commit's application transaction id: the ranges' digest, without the
        sequence, so that the same ranges land once whatever micro-batch carries them."""
        return self.batch_id.partition("-")[2] or self.batch_id

    @property
    def claims(self) -> list[tuple[str, str]]:
        """The (``shard_id``, ``from_position``) of each of its claims: its ranges, its sequence."""
        return [(r.shard_id, r.from_position) for r in self.ranges] + [
            (SEQUENCE_CLAIM, _sequence_position(self.batch_seq))
        ]


def batch_id_of(stream: str, batch_seq: int, ranges: Sequence[ShardRange]) -> str:
    """``<batch_seq>-<digest of the shard ranges>``: ordered by sequence, and the same for a replay."""
    text = "|".join(
        f"{r.shard_id}:{r.from_sequence}:{r.to_sequence}" for r in sorted(ranges, key=lambda r: r.shard_id)
    )
    digest = hashlib.sha256(f"{stream}|{text}".encode()).hexdigest()[:16]
    return f"{batch_seq:012d}-{digest}"


class ClaimedElsewhereError(RuntimeError):
    """Another writer claimed one of this micro-batch's ranges, or its sequence, first."""


class Checkpoints:
    def __init__(self, tables: DeltaTables, target: TableName) -> None:
        self.tables = tables
        self.name = checkpoint_table(target)

    def _events(self, *, pinned: bool = False) -> DataFrame | None:
        return self.tables.read(self.name, pinned=pinned) if self.tables.exists(self.name) else None

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

    def in_flight(self) -> list[str]:
        """The micro-batches claimed and not committed (their writers are writing them, or died
        since this run completed or released what it found), by id."""
        return sorted({batch.batch_id for batch, _ in self._uncommitted()})

    def open_batches(self) -> list[MicroBatch]:
        """Micro-batches claimed in full and not committed, oldest first: no other batch holds any
        of their claims; their writer won, then died (or is still writing)."""
        return self.uncommitted()[1]

    def abandoned_batches(self) -> list[MicroBatch]:
        """Micro-batches claimed in part and not committed: their writer lost a claim, so it
        never wrote to bronze (``ranges`` lists only the ranges it claimed)."""
        return self.uncommitted()[0]

    def uncommitted(self) -> tuple[list[MicroBatch], list[MicroBatch]]:
        """The abandoned and the open micro-batches, from one read of the table."""
        judged = self._uncommitted()
        return [b for b, in_full in judged if not in_full], [b for b, in_full in judged if in_full]

    def _uncommitted(self) -> list[tuple[MicroBatch, bool]]:
        """Each micro-batch claimed and not committed, oldest first, and whether it holds all
        its claims. One snapshot: a batch is judged on rows of a single version."""
        events = self._events(pinned=True)
        if events is None:
            return []
        for column, kind in (("ranges", "int"), ("claimant", "string")):
            if column not in events.columns:  # a table written before the column existed
                events = events.withColumn(column, F.lit(None).cast(kind))
        committed = events.where(F.col("event") == COMMITTED).select("batch_id").distinct()
        open_rows = (
            events.where(F.col("event") == CLAIMED)
            .join(committed, "batch_id", "left_anti")
            .orderBy("batch_seq", "batch_id", "shard_id")
            .toArrow()
            .to_pylist()
        )
        # By writer too: two runs may build the same batch id, and only one holds each claim.
        rows_of: dict[tuple[str, str | None], list[dict]] = {}
        for row in open_rows:
            rows_of.setdefault((row["batch_id"], row["claimant"]), []).append(row)
        uncommitted = []
        for (batch_id, claimant), rows in rows_of.items():
            ranges = tuple(_range(row) for row in rows if row["shard_id"] != SEQUENCE_CLAIM)
            declared = rows[0]["ranges"]
            # A null count: a row written before ``ranges`` existed, complete as far as we know.
            in_full = declared is None or (len(ranges) == declared and len(rows) == declared + 1)
            batch = MicroBatch(rows[0]["batch_seq"], batch_id, ranges, claimant)
            uncommitted.append((batch, in_full))
        return uncommitted

    def claim(self, batch: MicroBatch) -> None:
        """Claim ``batch``'s ranges and sequence; if another writer holds one of them (a range of
        the same shard from the same position, or the same ``batch_seq``), delete the claims
        inserted (best effort: else the next run releases them) and raise ``ClaimedElsewhereError``."""
        claimant = uuid.uuid4().hex
        rows = [self._row(batch, r, CLAIMED, claimant) for r in batch.ranges]
        rows.append(self._sequence_row(batch, claimant))
        frame = self.tables.spark.createDataFrame(rows, CHECKPOINT_SCHEMA)
        self.tables.insert_missing(self.name, frame, CLAIM_IDENTITY)
        holders: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for row in self._claims_on(batch.claims).toArrow().to_pylist():
            holders.setdefault((row["shard_id"], row["from_position"]), set()).add(
                (row["batch_id"], row["claimant"])
            )
        # Every claim held by this writer, not only none by a rival: a row that kept one of ours
        # out may have been deleted since; and a writer of the same batch id is a rival too.
        if all(holders.get(claim) == {(batch.batch_id, claimant)} for claim in batch.claims):
            return
        with contextlib.suppress(Exception):  # best effort: the next run releases what is left
            self._release({"batch_id": batch.batch_id, "claimant": claimant})
        others = sorted({held for held, by in set().union(*holders.values()) if by != claimant})
        raise ClaimedElsewhereError(
            f"{self.name}: micro-batch {batch.batch_id} overlaps micro-batch(es) another writer "
            f"claimed first ({', '.join(others) or 'since released'}); this run wrote nothing, and "
            "a later run reads its records again"
        )

    def release(self, batch: MicroBatch) -> None:
        """Delete the claims of ``batch``, abandoned (claimed in part): it never wrote to bronze,
        and its records are read again under a new ``batch_seq``. Only its writer's claims: a run
        that built the same batch id since may hold the others."""
        match = {"batch_id": batch.batch_id}
        self._release(match if batch.claimant is None else {**match, "claimant": batch.claimant})

    def _release(self, match: Mapping[str, str]) -> None:
        """Delete the claim rows whose columns hold these values."""
        columns = ["event", *match]
        schema = ", ".join(f"{column} STRING" for column in columns)
        keys = self.tables.spark.createDataFrame([(CLAIMED, *match.values())], schema)
        with_conflict_retries(lambda: self.tables.delete_matching(self.name, keys, columns))

    def _claims_on(self, claims: Sequence[tuple[str, str]]) -> DataFrame:
        """The claim rows on these (``shard_id``, ``from_position``), whoever holds them."""
        on = [
            (F.col("shard_id") == F.lit(shard_id)) & (F.col("from_position") == F.lit(position))
            for shard_id, position in claims
        ]
        return self.tables.read(self.name).where((F.col("event") == CLAIMED) & reduce(operator.or_, on))

    def commit(self, batch: MicroBatch) -> None:
        rows = [self._row(batch, r, COMMITTED, None) for r in batch.ranges]
        frame = self.tables.spark.createDataFrame(rows, CHECKPOINT_SCHEMA)
        # aligned: a table written before ``from_position``, ``ranges`` or ``claimant`` existed
        # gains them first.
        self.tables.append(self.name, self.tables.aligned(self.name, frame))

    @staticmethod
    def _row(batch: MicroBatch, shard: ShardRange, event: str, claimant: str | None) -> tuple:
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
            len(batch.ranges),
            claimant,
        )

    @staticmethod
    def _sequence_row(batch: MicroBatch, claimant: str) -> tuple:
        return (
            batch.batch_seq,
            batch.batch_id,
            CLAIMED,
            SEQUENCE_CLAIM,
            None,
            None,
            0,
            False,
            datetime.now(UTC),
            _sequence_position(batch.batch_seq),
            len(batch.ranges),
            claimant,
        )


def positions_after(positions: Mapping[str, Position], ranges: Sequence[ShardRange]) -> dict[str, Position]:
    moved = dict(positions)
    for shard in ranges:
        moved[shard.shard_id] = Position(shard.to_sequence, shard.finished)
    return moved


def _sequence_position(batch_seq: int) -> str:
    return f"{batch_seq:012d}"


def _range(row: dict) -> ShardRange:
    return ShardRange(
        row["shard_id"], row["from_sequence"], row["to_sequence"], row["records"], row["finished"]
    )
