"""One micro-batch of a stream into its bronze table, exactly once.

1. release the micro-batches a losing run left claimed in part (*abandoned*: they never wrote
   to bronze), then complete those claimed in full that a run which died left open
   (``checkpoints.py``);
2. unless another run's micro-batch is being written (claimed, not committed: a batch of other
   shards claimed now could land in bronze before it, under a greater id), read every readable
   shard from its committed position (parents before children), at most
   ``max_records_per_batch`` records in all;
3. claim the shard ranges read, and the sequence number ``n``, as micro-batch ``n``: each is
   claimed once, so of two runs at once that read the same records (or took the same ``n``),
   one claims them, and the other deletes what it claimed and raises ``ClaimedElsewhereError``
   before it writes anything to bronze. A later run reads its records again, under a greater
   ``n``: bronze never gains a micro-batch under an ``n`` it holds already, whose id could sort
   before one that silver.events (reading bronze in ``_batch_id`` order) has applied;
4. stage the records as one Parquet file and append it to bronze in one Delta commit that
   carries the digest of the ranges as its application transaction id;
5. commit the ranges: the shards' positions move.

A process killed between any two steps leaves a state the next run completes: before 3,
nothing was recorded and the same records are read again; after 3, the open micro-batch is
read again range by range and written under the same id, or only committed if bronze has it
(a loser killed before deleting its claims leaves an abandoned batch, released as in 1).

Each record keeps its shard id, sequence number, partition key and arrival time; ``Data`` is
kept as text when it is a JSON object, and otherwise rescued into ``_rescued_data`` (as text
under ``_malformed_record``, or base64 under ``_malformed_record_base64`` if it is not UTF-8).
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.sources import BATCH_ID, INGESTED_AT, RESCUED_DATA
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.stream.checkpoints import (
    Checkpoints,
    MicroBatch,
    ShardRange,
    batch_id_of,
)
from lakehouse_dagster.stream.kinesis import KinesisStream, Position, Shard, ShardRead, StreamRecord, readable
from lakehouse_dagster.stream.sources import (
    ARRIVAL,
    DATA,
    MALFORMED_RECORD,
    PARTITION_KEY,
    SEQUENCE_NUMBER,
    SHARD_ID,
    StreamSource,
)

CheckBatch = Callable[[DataFrame], object]
_TIMESTAMP = pa.timestamp("us", tz="UTC")
BRONZE_SCHEMA = pa.schema(
    [
        (DATA, pa.string()),
        (SHARD_ID, pa.string()),
        (SEQUENCE_NUMBER, pa.string()),
        (PARTITION_KEY, pa.string()),
        (ARRIVAL, _TIMESTAMP),
        (INGESTED_AT, _TIMESTAMP),
        (BATCH_ID, pa.string()),
        (RESCUED_DATA, pa.string()),
    ]
)


#: The same columns in Spark SQL, for the table a stream creates before its first record.
BRONZE_DDL = ", ".join(
    f"`{field.name}` {'TIMESTAMP' if pa.types.is_timestamp(field.type) else 'STRING'}"
    for field in BRONZE_SCHEMA
)


@dataclass
class StreamReport:
    target: TableName
    stream: str
    batches: list[str] = field(default_factory=list)
    recovered_batches: list[str] = field(default_factory=list)
    #: Abandoned micro-batches (claimed in part by a run that lost): their records are read again.
    released_batches: list[str] = field(default_factory=list)
    records_ingested: int = 0
    records_rescued: int = 0
    shards_read: list[str] = field(default_factory=list)
    #: Closed shards read to their end in this run: their children are readable from now on.
    shards_finished: list[str] = field(default_factory=list)
    millis_behind_latest: int = 0
    #: Shards trimmed before they were read to their end: the sequence after which records were lost.
    shards_trimmed: dict[str, str] = field(default_factory=dict)


def ingest_stream(
    tables: DeltaTables,
    source: StreamSource,
    target: TableName,
    client: Any,
    stream_name: str,
    *,
    log: logging.Logger,
    check_batch: CheckBatch | None = None,
) -> StreamReport:
    """One micro-batch of ``stream_name`` into ``target`` (after completing any left open)."""
    return _MicroBatchRun(tables, source, target, KinesisStream(client, stream_name), log, check_batch).run()


def decode(data: bytes) -> tuple[str | None, str | None]:
    """(the JSON object's text, None), or (None, the rescued record as JSON).

    Only strict JSON is an object here: not ``NaN`` or ``Infinity`` (Python's ``json.dumps``
    writes them), a name twice in one object, or an unpaired surrogate (``"\\ud800"``). Python
    reads those, but the engine's JSON functions read such a record's fields as null (or the
    first of two names): silver would lose the value without rescuing it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, json.dumps({f"{MALFORMED_RECORD}_base64": base64.b64encode(data).decode("ascii")})
    try:
        value = json.loads(text, parse_constant=_not_json, object_pairs_hook=_names_once)
        if _SURROGATE_ESCAPE.search(text):
            json.dumps(value, ensure_ascii=False).encode("utf-8")  # an unpaired one cannot be encoded
    except (ValueError, RecursionError):  # UnicodeEncodeError too; nested deeper than the parser reads
        value = None
    if not isinstance(value, dict):
        return None, json.dumps({MALFORMED_RECORD: text})
    return text, None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _names_once(pairs: list[tuple[str, object]]) -> dict[str, object]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("a name appears twice in one object")
    return value


def bronze_rows(records: Sequence[StreamRecord], batch_id: str, ingested_at: datetime) -> pa.Table:
    decoded = [decode(record.data) for record in records]
    count = len(records)
    return pa.table(
        {
            DATA: pa.array([text for text, _ in decoded], pa.string()),
            SHARD_ID: pa.array([r.shard_id for r in records], pa.string()),
            SEQUENCE_NUMBER: pa.array([r.sequence_number for r in records], pa.string()),
            PARTITION_KEY: pa.array([r.partition_key for r in records], pa.string()),
            ARRIVAL: pa.array([r.arrival for r in records], _TIMESTAMP),
            INGESTED_AT: pa.repeat(pa.scalar(ingested_at, _TIMESTAMP), count),
            BATCH_ID: pa.repeat(pa.scalar(batch_id, pa.string()), count),
            RESCUED_DATA: pa.array([rescued for _, rescued in decoded], pa.string()),
        },
        schema=BRONZE_SCHEMA,
    )


class _MicroBatchRun:
    def __init__(
        self,
        tables: DeltaTables,
        source: StreamSource,
        target: TableName,
        stream: KinesisStream,
        log: logging.Logger,
        check_batch: CheckBatch | None,
    ) -> None:
        self.tables, self.source, self.target, self.stream = tables, source, target, stream
        self.log, self.check_batch = log, check_batch
        self.checkpoints = Checkpoints(tables, target)
        self.report = StreamReport(target, stream.name)

    def run(self) -> StreamReport:
        shards = {shard.shard_id: shard for shard in self.stream.shards()}
        abandoned, left_open = self.checkpoints.uncommitted()
        for batch in abandoned:
            self.log.warning(
                "%s: micro-batch %s lost a claim to another run and never reached bronze; releasing "
                "its claims, so that its records are read again in a new micro-batch",
                self.target,
                batch.batch_id,
            )
            self.checkpoints.release(batch)
            self.report.released_batches.append(batch.batch_id)
        for batch in left_open:
            self.log.warning(
                "%s: micro-batch %s was left open by a run that died; completing it",
                self.target,
                batch.batch_id,
            )
            self._complete(batch, shards)
            self.report.recovered_batches.append(batch.batch_id)
        positions, batch_seq = self.checkpoints.positions()
        writing = self.checkpoints.in_flight()
        if writing:
            # Another run's micro-batch is being written: one claiming other shards now could
            # land in bronze first, under a greater id than a reader following ``_batch_id``
            # (silver.events) must not pass before the other lands. The next run reads on.
            self.log.info(
                "%s: micro-batch %s of another run is being written; this run reads nothing new",
                self.target,
                ", ".join(writing),
            )
            return self.report
        trimmed = self._trimmed(shards, positions)
        reads = self._read(list(shards.values()), positions)
        ranges = tuple(
            ShardRange(read.shard_id, read.after, read.last_sequence, len(read.records), read.finished)
            for read in reads
            if read.records or read.finished
        ) + tuple(ShardRange(shard_id, after, after, 0, True) for shard_id, after in trimmed.items())
        if not ranges:
            self.log.info("%s: nothing new in stream %s", self.target, self.stream.name)
            return self.report
        batch = MicroBatch(batch_seq, batch_id_of(self.stream.name, batch_seq, ranges), ranges)
        # Checked before the claim: a batch that a ``fail`` expectation refuses is not claimed,
        # and the next run reads the same records again.
        self._write(batch, [record for read in reads for record in read.records], claim=True)
        self.checkpoints.commit(batch)
        self._account(batch, reads)
        return self.report

    def _trimmed(
        self, shards: Mapping[str, Shard], positions: Mapping[str, Position]
    ) -> dict[str, str | None]:
        """Shards read in part that are no longer listed: the retention period trimmed them
        before they were read to their end, so their records after the position are lost. Said
        once (the next micro-batch marks them finished), as a warning and in the report."""
        trimmed = {
            shard_id: position.sequence
            for shard_id, position in positions.items()
            if not position.finished and shard_id not in shards
        }
        for shard_id, after in trimmed.items():
            self.log.warning(
                "%s: shard %s of stream %s is no longer listed (trimmed by the retention period) "
                "and was not read to its end: any records after sequence %s were lost",
                self.target,
                shard_id,
                self.stream.name,
                after,
            )
        self.report.shards_trimmed = {shard_id: after or "" for shard_id, after in trimmed.items()}
        return trimmed

    def _read(self, shards: list[Shard], positions: dict[str, Position]) -> list[ShardRead]:
        """Readable shards from their positions; a parent finished here makes its children
        readable in the same micro-batch."""
        positions = dict(positions)
        reads: dict[str, ShardRead] = {}
        budget = self.source.max_records_per_batch
        while budget > 0:
            candidates = [s for s in readable(shards, positions) if s.shard_id not in reads]
            if not candidates:
                break
            per_shard = max(1, budget // len(candidates))
            for shard in candidates:
                after = positions.get(shard.shard_id, Position()).sequence
                read = self.stream.read(shard, after, per_shard, self.source.max_calls_per_shard)
                reads[shard.shard_id] = read
                budget -= len(read.records)
                positions[shard.shard_id] = Position(read.last_sequence, read.finished)
        return list(reads.values())

    def _complete(self, batch: MicroBatch, shards: dict[str, Shard]) -> None:
        """Commit an open micro-batch whose rows are in bronze; else read its ranges again and
        write them under its id first."""
        if not self._in_bronze(batch.batch_id):
            records = [
                record
                for shard_range in batch.ranges
                if shard_range.records
                for record in self.stream.read(
                    shards.get(shard_range.shard_id, Shard(shard_range.shard_id)),
                    shard_range.from_sequence,
                    shard_range.records,
                    max_calls=max(self.source.max_calls_per_shard, 10 + shard_range.records // 1000),
                    until=shard_range.to_sequence,
                ).records
            ]
            self._write(batch, records)
        self.checkpoints.commit(batch)
        self.report.records_ingested += sum(r.records for r in batch.ranges)

    def _write(self, batch: MicroBatch, records: list[StreamRecord], *, claim: bool = False) -> None:
        """Stage and check the records, claim the batch (a new one), append it to bronze."""
        rows = bronze_rows(records, batch.batch_id, datetime.now(UTC))
        staging_uri = self.tables.layout.staging_uri(self.target, batch.batch_id)
        try:
            if records:
                with files.parquet_writer(f"{staging_uri}/data.parquet", rows.schema) as writer:
                    writer.write_table(rows)
                if self.check_batch is not None:
                    self.check_batch(self.tables.spark.read.parquet(staging_uri))
            if claim:
                self.checkpoints.claim(batch)
            if records and not self.tables.append_staged(self.target, staging_uri, token=batch.token):
                self.log.warning("%s: micro-batch %s was in bronze already", self.target, batch.batch_id)
        finally:
            files.delete_tree(staging_uri)
        self.report.records_rescued += rows.num_rows - rows.column(RESCUED_DATA).null_count

    def _in_bronze(self, batch_id: str) -> bool:
        if not self.tables.exists(self.target):
            return False
        return not self.tables.read(self.target).where(F.col(BATCH_ID) == F.lit(batch_id)).limit(1).isEmpty()

    def _account(self, batch: MicroBatch, reads: list[ShardRead]) -> None:
        report = self.report
        report.batches.append(batch.batch_id)
        report.records_ingested += sum(r.records for r in batch.ranges)
        report.shards_read = [read.shard_id for read in reads]
        report.shards_finished = [
            r.shard_id for r in batch.ranges if r.finished and r.shard_id not in report.shards_trimmed
        ]
        report.millis_behind_latest = max((read.millis_behind for read in reads), default=0)
        self.log.info(
            "%s: micro-batch %s appended %d records from %d shard(s) of %s",
            self.target,
            batch.batch_id,
            sum(r.records for r in batch.ranges),
            len(batch.ranges),
            self.stream.name,
        )
