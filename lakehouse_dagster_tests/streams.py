"""Helpers of the stream tests: streams on the moto server, and what bronze holds."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.sample_data.events import ClickRecord, put_records
from lakehouse_dagster.stream.microbatch import StreamReport, ingest_stream
from lakehouse_dagster.stream.sources import StreamSource
from lakehouse_dagster_tests.conftest import MotoServer, unique_name

TARGET = TableName("bronze", "events")


def create_stream(moto: MotoServer, shards: int = 2) -> str:
    name = unique_name("events")
    client = moto.client("kinesis")
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def put(moto: MotoServer, stream: str, records: list[ClickRecord]) -> None:
    put_records(moto.client("kinesis"), stream, records)


def microbatch(
    tables: DeltaTables, moto: MotoServer, stream: str, source: StreamSource | None = None
) -> StreamReport:
    return ingest_stream(
        tables,
        source or StreamSource(),
        TARGET,
        moto.client("kinesis"),
        stream,
        log=logging.getLogger("lakehouse_dagster_tests"),
    )


def bronze_records(tables: DeltaTables) -> list[dict[str, Any]]:
    if not tables.exists(TARGET):
        return []
    return tables.read(TARGET).toArrow().to_pylist()


@contextlib.contextmanager
def moto_routes_to_open_shards() -> Iterator[None]:
    """Make the in-process moto server reshard as Kinesis does: after a split, new records go to
    the open children (moto keeps routing them to the closed parent), and the parent keeps its
    records (moto moves them). The threaded server shares this process, so patching its model
    classes changes what the HTTP endpoint does."""
    from moto.kinesis.models import Stream

    route, split = Stream.get_shard_for_key, Stream.split_shard

    def open_shard_for_key(self, partition_key, explicit_hash_key):
        if explicit_hash_key:
            key = int(explicit_hash_key)
        else:
            key = int(hashlib.md5(partition_key.encode("utf-8")).hexdigest(), 16)
        return next(
            (s for s in self.shards.values() if s.is_open and s.starting_hash <= key <= s.ending_hash),
            None,
        )

    def split_keeping_records(self, shard_to_split, new_starting_hash_key):
        parent = self.shards[shard_to_split]
        kept, parent.records = parent.records, OrderedDict()
        split(self, shard_to_split, new_starting_hash_key)
        parent.records = kept

    Stream.get_shard_for_key, Stream.split_shard = open_shard_for_key, split_keeping_records
    try:
        yield
    finally:
        Stream.get_shard_for_key, Stream.split_shard = route, split
