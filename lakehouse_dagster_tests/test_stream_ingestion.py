"""Kinesis to bronze.events against the moto server: every record once, across crashes and reshards."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from lakehouse_dagster.domains.events.transforms import typed_events
from lakehouse_dagster.sample_data.events import MALFORMED, ClickRecord, Clickstream
from lakehouse_dagster.stream.checkpoints import CLAIMED, COMMITTED, checkpoint_table
from lakehouse_dagster.stream.kinesis import KinesisStream, StreamRecord
from lakehouse_dagster.stream.microbatch import StreamReport, bronze_rows, decode, ingest_stream
from lakehouse_dagster.stream.sources import StreamSource
from lakehouse_dagster_tests.crash_during_microbatch import CRASH_EXIT_CODE
from lakehouse_dagster_tests.streams import (
    TARGET,
    bronze_records,
    create_stream,
    microbatch,
    moto_routes_to_open_shards,
    put,
)


def clicks(stream: Clickstream, count: int) -> list[ClickRecord]:
    return stream.records(count, datetime.now(UTC))


def assert_bronze_holds_exactly(tables, produced: list[ClickRecord]) -> None:
    """Every record put is in bronze once (a record put twice is there twice: two records)."""
    rows = bronze_records(tables)
    positions = Counter((row["shard_id"], row["sequence_number"]) for row in rows)
    assert [p for p, n in positions.items() if n > 1] == [], "a record was ingested twice"
    assert len(rows) == len(produced), "bronze holds another number of records than were put"
    stored = Counter(
        row["data"].encode() if row["data"] is not None else _rescued_bytes(row["_rescued_data"])
        for row in rows
    )
    assert stored == Counter(record.data for record in produced)


def _rescued_bytes(rescued: str) -> bytes:
    value = json.loads(rescued)
    if "_malformed_record" in value:
        return value["_malformed_record"].encode()
    return base64.b64decode(value["_malformed_record_base64"])


def test_micro_batches_ingest_every_record_once_and_rescue_what_is_not_json(tables, moto_server) -> None:
    stream = create_stream(moto_server, shards=3)
    source = Clickstream(seed=3, malformed_share=0.05, duplicate_share=0.05)
    produced: list[ClickRecord] = []
    for count in (400, 0, 250):
        batch = clicks(source, count)
        put(moto_server, stream, batch)
        produced += batch
        report = microbatch(tables, moto_server, stream)
        assert report.records_ingested == count
    assert microbatch(tables, moto_server, stream).batches == [], "nothing new: no micro-batch"

    assert_bronze_holds_exactly(tables, produced)
    rows = bronze_records(tables)
    malformed = sum(record.kind == MALFORMED for record in produced)
    assert malformed > 0 and sum(row["_rescued_data"] is not None for row in rows) == malformed
    assert all((row["data"] is None) == (row["_rescued_data"] is not None) for row in rows)
    assert {row["shard_id"] for row in rows} == {f"shardId-00000000000{i}" for i in range(3)}
    assert all(row["approximate_arrival_timestamp"] is not None and row["partition_key"] for row in rows)


def test_decode_keeps_json_objects_and_rescues_the_rest() -> None:
    assert decode(b'{"a": 1}') == ('{"a": 1}', None)
    assert decode(b"[1]") == (None, json.dumps({"_malformed_record": "[1]"}))
    assert decode(b'{"a": ') == (None, json.dumps({"_malformed_record": '{"a": '}))
    assert decode(b"\xff\x00") == (None, json.dumps({"_malformed_record_base64": "/wA="}))
    for deep in (
        "[" * 100_000,
        '{"a": ' + "[" * 5_000 + "]" * 5_000 + "}",
    ):  # a record cannot stop the stream
        assert decode(deep.encode()) == (None, json.dumps({"_malformed_record": deep}))


def test_json_the_engine_reads_otherwise_than_python_is_rescued_in_bronze(spark) -> None:
    """NaN (what Python's json.dumps writes for a float nan), a name twice and an unpaired
    surrogate are read by Python but not alike by the engine's JSON functions (a null price, the
    first name, every field null): rescued whole at bronze, they reach silver in
    ``_rescued_data`` instead of as silently null fields."""
    odd = [
        '{"event_id": "e1", "price": NaN}',
        '{"event_id": "e2", "price": {"usd": -Infinity}}',
        '{"event_id": "e3", "event_id": "e4"}',
        '{"event_id": "e5\\ud800", "price": 2}',
    ]
    plain = [
        '{"event_id": "e6", "price": 2.5}',
        '{"event_id": "\\ud83d\\ude00", "price": 1}',
        '{"event_id": "e7", "price": 19.990}',
        '{"event_id": "e8", "price": 19.999}',  # more places than DECIMAL(12,2): rescued, not rounded
        '{"event_id": "e9", "price": 0.005}',
    ]
    assert [decode(text.encode()) for text in odd] == [
        (None, json.dumps({"_malformed_record": t})) for t in odd
    ]
    assert [decode(text.encode()) for text in plain] == [(text, None) for text in plain]

    arrival = datetime(2026, 11, 28, tzinfo=UTC)
    records = [
        StreamRecord("shardId-0", str(n), "k", arrival, text.encode()) for n, text in enumerate(odd + plain)
    ]
    bronze = spark.createDataFrame(bronze_rows(records, "batch-1", arrival).to_pandas())
    silver = {row["event_id"]: row for row in typed_events(bronze).collect() if row["event_id"]}
    rescued = [row["_rescued_data"] for row in typed_events(bronze).collect() if row["event_id"] is None]

    assert sorted(json.loads(r)["_malformed_record"] for r in rescued) == sorted(odd)
    assert {key: row["price"] for key, row in silver.items()} == {
        "e6": Decimal("2.50"),
        "\U0001f600": Decimal("1.00"),
        "e7": Decimal("19.99"),
        "e8": None,
        "e9": None,
    }
    assert {key: json.loads(silver[key]["_rescued_data"]) for key in ("e8", "e9")} == {
        "e8": {"price": "19.999"},
        "e9": {"price": "0.005"},
    }


def crash(sail_url: str, root: str, endpoint: str, stream: str, step: str) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse_dagster_tests.crash_during_microbatch",
            sail_url,
            root,
            endpoint,
            stream,
            step,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == CRASH_EXIT_CODE, completed.stderr[-3000:]


def checkpoint_events(tables) -> Counter:
    name = checkpoint_table(TARGET)
    if not tables.exists(name):
        return Counter()
    return Counter((row["batch_id"], row["event"]) for row in tables.read(name).toArrow().to_pylist())


def test_a_process_killed_at_each_step_of_a_micro_batch_neither_loses_nor_duplicates(
    tables, layout, sail_url, moto_server
) -> None:
    stream = create_stream(moto_server, shards=2)
    source = Clickstream(seed=5, malformed_share=0.05)
    produced: list[ClickRecord] = []
    for step in ("after_read", "after_claim", "after_bronze_write", "after_commit"):
        batch = clicks(source, 120)
        put(moto_server, stream, batch)
        before = len(bronze_records(tables))
        crash(sail_url, layout.root, moto_server.endpoint_url, stream, step)

        events = checkpoint_events(tables)
        open_batches = {b for b, e in events if e == CLAIMED} - {b for b, e in events if e == COMMITTED}
        in_bronze = len(bronze_records(tables)) - before
        expected_state = {
            "after_read": (0, 0),  # nothing recorded
            "after_claim": (1, 0),  # claimed, not written
            "after_bronze_write": (1, len(batch)),  # written, not committed
            "after_commit": (0, len(batch)),  # all done, the report was lost
        }[step]
        assert (len(open_batches), in_bronze) == expected_state, step

        more = clicks(source, 30)  # records that arrive before the next run
        put(moto_server, stream, more)
        produced += batch + more
        report = microbatch(tables, moto_server, stream)
        assert len(report.recovered_batches) == expected_state[0], step
        assert_bronze_holds_exactly(tables, produced)
    assert microbatch(tables, moto_server, stream).records_ingested == 0


def test_two_runs_completing_the_same_open_micro_batch_land_it_once(
    tables, layout, sail_url, moto_server
) -> None:
    """A run completing an open micro-batch stages it; before it appends, a second run completes
    the same batch from start to end. Each stages in a folder of its own: the second lands the
    batch, the first finds it landed and commits nothing (a shared folder was truncated, moved
    into the table and deleted under the first writer)."""
    stream = create_stream(moto_server, shards=1)
    batch = clicks(Clickstream(seed=9), 80)
    put(moto_server, stream, batch)
    crash(sail_url, layout.root, moto_server.endpoint_url, stream, "after_claim")

    second_run: list[StreamReport] = []

    def second_run_completes_it_first(_staged) -> None:
        second_run.append(microbatch(tables, moto_server, stream))

    first_run = ingest_stream(
        tables,
        StreamSource(),
        TARGET,
        moto_server.client("kinesis"),
        stream,
        log=logging.getLogger("lakehouse_dagster_tests"),
        check_batch=second_run_completes_it_first,
    )
    assert len(second_run[0].recovered_batches) == len(first_run.recovered_batches) == 1
    assert_bronze_holds_exactly(tables, batch)
    assert tables.rows_written(TARGET, None) == len(batch), "one commit of the batch's rows"


def test_a_parent_shard_is_read_to_its_end_before_its_children(tables, moto_server) -> None:
    """The reshard is moto's SplitShard with its routing patched in-process
    (``moto_routes_to_open_shards``): records put after the split go to the children."""
    with moto_routes_to_open_shards():
        stream = create_stream(moto_server, shards=1)
        client = moto_server.client("kinesis")
        source = Clickstream(seed=11, malformed_share=0, duplicate_share=0, concurrent_sessions=20)
        first = clicks(source, 300)
        put(moto_server, stream, first)
        small = StreamSource(max_records_per_batch=100)
        microbatch(tables, moto_server, stream, small)  # the parent is not read to its end yet

        parent = client.list_shards(StreamName=stream)["Shards"][0]
        middle = (
            int(parent["HashKeyRange"]["StartingHashKey"]) + int(parent["HashKeyRange"]["EndingHashKey"])
        ) // 2
        client.split_shard(StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(middle))
        second = clicks(source, 300)
        put(moto_server, stream, second)
        shards = {
            s["ShardId"]: s.get("ParentShardId") for s in client.list_shards(StreamName=stream)["Shards"]
        }
        children = {shard for shard, parent_id in shards.items() if parent_id == parent["ShardId"]}
        assert len(children) == 2

        reports = [microbatch(tables, moto_server, stream, small) for _ in range(8)]

    assert sum(r.records_ingested for r in reports) == 500, "every record after the first micro-batch"
    rows = bronze_records(tables)
    assert_bronze_holds_exactly(tables, first + second)
    assert {row["shard_id"] for row in rows if row["data"] in {r.data.decode() for r in second}} <= children
    parent_batches = {row["_batch_id"] for row in rows if row["shard_id"] == parent["ShardId"]}
    child_batches = {row["_batch_id"] for row in rows if row["shard_id"] in children}
    assert max(parent_batches) <= min(child_batches), "a child was read before its parent's end"
    # Per session (partition key), the events are in bronze in the order they were put.
    order = {json.loads(r.data)["event_id"]: i for i, r in enumerate(first + second)}
    by_key: dict[str, list[tuple]] = {}
    for row in rows:
        generation = 0 if row["shard_id"] == parent["ShardId"] else 1
        position = (row["_batch_id"], generation, int(row["sequence_number"]))
        by_key.setdefault(row["partition_key"], []).append(
            (position, order[json.loads(row["data"])["event_id"]])
        )
    for key, events in by_key.items():
        put_order = [index for _, index in sorted(events)]
        assert put_order == sorted(put_order), f"session {key} read out of order"


def test_a_shard_trimmed_before_it_was_read_to_its_end_is_reported_once(
    tables, moto_server, monkeypatch, caplog
) -> None:
    """moto cannot expire records: the parent's trim is its absence from ListShards."""
    with moto_routes_to_open_shards():
        stream = create_stream(moto_server, shards=1)
        client = moto_server.client("kinesis")
        put(moto_server, stream, clicks(Clickstream(seed=5, malformed_share=0, duplicate_share=0), 300))
        small = StreamSource(max_records_per_batch=100)
        microbatch(tables, moto_server, stream, small)
        parent = client.list_shards(StreamName=stream)["Shards"][0]
        hashes = parent["HashKeyRange"]
        middle = (int(hashes["StartingHashKey"]) + int(hashes["EndingHashKey"])) // 2
        client.split_shard(StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(middle))
        listed = KinesisStream.shards
        monkeypatch.setattr(
            KinesisStream,
            "shards",
            lambda self: [shard for shard in listed(self) if shard.shard_id != parent["ShardId"]],
        )
        read_up_to = max(int(row["sequence_number"]) for row in bronze_records(tables))

        with caplog.at_level(logging.WARNING):
            trimmed = microbatch(tables, moto_server, stream, small)
        after = microbatch(tables, moto_server, stream, small)

    assert trimmed.shards_trimmed == {parent["ShardId"]: str(read_up_to)}
    assert f"shard {parent['ShardId']} of stream {stream} is no longer listed" in caplog.text
    assert parent["ShardId"] not in trimmed.shards_finished, "not read to its end"
    assert after.shards_trimmed == {}, "said once"
    assert len(bronze_records(tables)) == 100, "what was read stays, once"


def test_the_unit_of_an_empty_stream_creates_bronze_empty_and_names_a_missing_stream(
    spark, layout, moto_server, log
) -> None:
    from dataclasses import replace

    from lakehouse_dagster.lake.delta import DeltaTables
    from lakehouse_dagster.quality.thresholds import Thresholds
    from lakehouse_dagster.registry import REGISTRY
    from lakehouse_dagster.units.request import UnitRequest
    from lakehouse_dagster.units.run import run_unit

    table = REGISTRY.table("bronze.events")
    request = UnitRequest(table="bronze.events", as_of_date=datetime.now(UTC).date())
    unconfigured = DeltaTables(spark, replace(layout, aws=moto_server.aws))
    failed = run_unit(request, table, unconfigured, Thresholds(), log)
    assert failed.error is not None and "LAKEHOUSE_KINESIS_STREAM" in failed.error.message

    tables = DeltaTables(
        spark, replace(layout, aws=moto_server.aws, landing_stream=create_stream(moto_server))
    )
    result = run_unit(request, table, tables, Thresholds(), log)
    assert result.error is None, result.error
    assert result.metadata["dagster/row_count"] == 0 and result.metadata["lakehouse/records_ingested"] == 0
    assert [c.name for c in result.columns][:5] == [
        "data",
        "shard_id",
        "sequence_number",
        "partition_key",
        "approximate_arrival_timestamp",
    ]

    put(moto_server, tables.layout.landing_stream, clicks(Clickstream(seed=1), 50))
    later = run_unit(request, table, tables, Thresholds(), log)
    assert later.error is None and later.metadata["dagster/row_count"] == 50
