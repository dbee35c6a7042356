"""The shards of a Kinesis stream and their records, parents before children.

A shard that was split or merged is *closed*: Kinesis reports an ending sequence number for
it, and its children (``ParentShardId``, ``AdjacentParentShardId``) take the new records.
Records of one partition key are in order only if a parent is read to its end before any of
its children, so a child is readable only once each parent is *finished*: read to its end,
or no longer listed (trimmed after the retention period).

A closed shard is read to its end when GetRecords returns no ``NextShardIterator`` (AWS), or
when a read of it is caught up (``MillisBehindLatest`` 0, no records): a closed shard gets no
new records, so both mean the same. (moto never returns a null iterator nor ``ChildShards``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: GetRecords returns at most 10,000 records a call.
_GET_RECORDS_LIMIT = 10_000


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parents: tuple[str, ...] = ()
    #: Set once the shard is closed (split or merged).
    ending_sequence: str | None = None

    @property
    def closed(self) -> bool:
        return self.ending_sequence is not None


@dataclass(frozen=True)
class StreamRecord:
    shard_id: str
    sequence_number: str
    partition_key: str
    arrival: datetime
    data: bytes


@dataclass
class ShardRead:
    """What a micro-batch read of one shard: records after ``after``, and whether the shard is finished."""

    shard_id: str
    after: str | None
    records: list[StreamRecord] = field(default_factory=list)
    finished: bool = False
    #: How far the read stayed behind the shard's newest record (Kinesis' MillisBehindLatest).
    millis_behind: int = 0

    @property
    def last_sequence(self) -> str | None:
        return self.records[-1].sequence_number if self.records else self.after


@dataclass(frozen=True)
class Position:
    """Where a shard's committed records end (None: nothing read yet), and whether it is finished."""

    sequence: str | None = None
    finished: bool = False


def sequence_key(sequence: str) -> int:
    """Sequence numbers are decimal strings of up to 128 bits: compare them as integers."""
    return int(sequence)


class KinesisStream:
    """One stream, through a boto3 Kinesis client."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def shards(self) -> list[Shard]:
        found: list[Shard] = []
        token = None
        while True:
            page = (
                self.client.list_shards(NextToken=token)
                if token
                else self.client.list_shards(StreamName=self.name)
            )
            for shard in page["Shards"]:
                parents = tuple(
                    shard[key] for key in ("ParentShardId", "AdjacentParentShardId") if shard.get(key)
                )
                ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
                found.append(Shard(shard["ShardId"], parents, ending))
            token = page.get("NextToken")
            if not token:
                return found

    def read(
        self, shard: Shard, after: str | None, limit: int, max_calls: int, until: str | None = None
    ) -> ShardRead:
        """Records of ``shard`` after sequence ``after`` (from the oldest when None): at most
        ``limit``, or exactly up to ``until`` (inclusive) when given, to read a range again."""
        read = ShardRead(shard.shard_id, after)
        iterator = self._iterator(shard.shard_id, after)
        for _call in range(max_calls):
            wanted = min(_GET_RECORDS_LIMIT, limit - len(read.records))
            if wanted <= 0:
                break
            response = self.client.get_records(ShardIterator=iterator, Limit=wanted)
            records = [_record(shard.shard_id, raw) for raw in response["Records"]]
            if until is not None:
                records = [r for r in records if sequence_key(r.sequence_number) <= sequence_key(until)]
            read.records += records
            read.millis_behind = response.get("MillisBehindLatest", 0)
            iterator = response.get("NextShardIterator")
            if iterator is None:
                read.finished = True
                break
            if until is not None and read.last_sequence == until:
                break
            if not response["Records"] and response.get("MillisBehindLatest", 0) == 0:
                read.finished = shard.closed
                break
        if until is not None and read.last_sequence != until:
            raise RuntimeError(
                f"stream {self.name} shard {shard.shard_id}: could not read records again up to "
                f"{until} (read up to {read.last_sequence}); were they trimmed by the retention period?"
            )
        if shard.closed and read.last_sequence is not None and shard.ending_sequence is not None:
            read.finished = read.finished or sequence_key(read.last_sequence) >= sequence_key(
                shard.ending_sequence
            )
        return read

    def _iterator(self, shard_id: str, after: str | None) -> str:
        if after is None:
            position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        response = self.client.get_shard_iterator(StreamName=self.name, ShardId=shard_id, **position)
        return response["ShardIterator"]


def readable(shards: Iterable[Shard], positions: Mapping[str, Position]) -> list[Shard]:
    """The shards a micro-batch may read now: not finished, and every listed parent finished."""
    listed = {shard.shard_id for shard in shards}

    def finished(shard_id: str) -> bool:
        return shard_id not in listed or positions.get(shard_id, Position()).finished

    return [
        shard
        for shard in shards
        if not finished(shard.shard_id) and all(finished(parent) for parent in shard.parents)
    ]


def _record(shard_id: str, raw: dict[str, Any]) -> StreamRecord:
    arrival = raw.get("ApproximateArrivalTimestamp")
    if isinstance(arrival, datetime):
        arrival = arrival.astimezone(UTC)
    return StreamRecord(shard_id, raw["SequenceNumber"], raw.get("PartitionKey", ""), arrival, raw["Data"])
