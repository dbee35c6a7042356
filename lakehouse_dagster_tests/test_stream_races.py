"""Two runs at once: a bronze micro-batch, or a silver.events build, racing another. Every record
and every event lands once. The interleavings are forced with hooks, never with sleeps."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from lakehouse_dagster.domains.events.tables import SILVER_EVENTS, SILVER_PROGRESS
from lakehouse_dagster.engine.sessions import connect
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.stream import checkpoints as stream_checkpoints
from lakehouse_dagster.stream import microbatch as stream_microbatch
from lakehouse_dagster.stream.checkpoints import Checkpoints, ClaimedElsewhereError, MicroBatch, ShardRange
from lakehouse_dagster.stream.microbatch import ingest_stream
from lakehouse_dagster.stream.sources import StreamSource
from lakehouse_dagster.stream.unit import stream_metadata
from lakehouse_dagster_tests.conftest import MotoServer
from lakehouse_dagster_tests.streams import TARGET, bronze_records, create_stream, microbatch, put
from lakehouse_dagster_tests.test_events_silver import page_view
from lakehouse_dagster_tests.units import run_table

LOG = logging.getLogger("lakehouse_dagster_tests")
FIRST_SHARD_KEY, SECOND_SHARD_KEY = "0", str(2**127 + 1)  # explicit hash keys of a stream of two shards


def put_on(moto: MotoServer, stream: str, hash_key: str, texts: list[str]) -> list[bytes]:
    client = moto.client("kinesis")
    for text in texts:
        client.put_record(StreamName=stream, Data=text.encode(), PartitionKey="k", ExplicitHashKey=hash_key)
    return [text.encode() for text in texts]


def records(prefix: str, count: int) -> list[str]:
    return [json.dumps({"event_id": f"{prefix}{n}"}) for n in range(count)]


def assert_bronze_holds_each_once(tables: DeltaTables, sent: list[bytes]) -> None:
    rows = bronze_records(tables)
    positions = Counter((row["shard_id"], row["sequence_number"]) for row in rows)
    assert [p for p, n in positions.items() if n > 1] == [], "a record was ingested twice"
    assert Counter(row["data"].encode() for row in rows) == Counter(sent)


def run_b_with_run_a_inside(
    tables: DeltaTables, moto: MotoServer, stream: str, between: Callable[[], None] = lambda: None
) -> list[MicroBatch]:
    """Run B lists the micro-batches left open (none); then run A reads, claims and appends to bronze,
    and is slow to commit its checkpoint; then ``between``; then B goes on and, A's micro-batch
    being written, reads nothing new. Returns A's batches, not committed yet."""
    list_uncommitted, commit = Checkpoints.uncommitted, Checkpoints.commit
    deferred: list[MicroBatch] = []
    state = {"a_ran": False}

    def uncommitted_then_run_a(self: Checkpoints) -> tuple[list[MicroBatch], list[MicroBatch]]:
        found = list_uncommitted(self)
        if not state["a_ran"]:
            state["a_ran"] = True
            Checkpoints.commit = lambda _self, batch: deferred.append(batch)  # type: ignore[method-assign]
            try:
                microbatch(tables, moto, stream)
            finally:
                Checkpoints.commit = commit  # type: ignore[method-assign]
            between()
        return found

    Checkpoints.uncommitted = uncommitted_then_run_a  # type: ignore[method-assign]
    try:
        # Run B: A's micro-batch is being written (claimed, not committed), so B reads nothing new.
        assert microbatch(tables, moto, stream).records_ingested == 0
    finally:
        Checkpoints.uncommitted = list_uncommitted  # type: ignore[method-assign]
    assert len(deferred) == 1, "run A wrote one micro-batch"
    return deferred


def test_a_run_overlapping_another_ingests_nothing_twice(tables, moto_server) -> None:
    stream = create_stream(moto_server, shards=2)
    sent = put_on(moto_server, stream, FIRST_SHARD_KEY, records("x", 20))
    sent += put_on(moto_server, stream, SECOND_SHARD_KEY, records("y", 20))
    microbatch(tables, moto_server, stream)
    sent += put_on(moto_server, stream, FIRST_SHARD_KEY, records("z", 15))
    sent += put_on(moto_server, stream, SECOND_SHARD_KEY, records("w", 15))

    (batch_of_a,) = run_b_with_run_a_inside(tables, moto_server, stream)
    Checkpoints(tables, TARGET).commit(batch_of_a)  # run A finishes

    assert_bronze_holds_each_once(tables, sent)
    assert microbatch(tables, moto_server, stream).records_ingested == 0


def test_records_a_run_left_while_another_was_writing_are_read_by_the_next_run(tables, moto_server) -> None:
    """A reads only the first shard; records then reach the second one. B, finding A's micro-batch
    being written, reads neither (claiming the second shard's records alone, it could land before
    A under a greater id); the next run reads them."""
    stream = create_stream(moto_server, shards=2)
    sent = put_on(moto_server, stream, FIRST_SHARD_KEY, records("x", 10))
    microbatch(tables, moto_server, stream)
    sent += put_on(moto_server, stream, FIRST_SHARD_KEY, records("z", 10))
    later: list[bytes] = []

    def records_reach_the_last_shard() -> None:
        later.extend(put_on(moto_server, stream, SECOND_SHARD_KEY, records("w", 10)))

    (batch_of_a,) = run_b_with_run_a_inside(tables, moto_server, stream, records_reach_the_last_shard)
    checkpoints = Checkpoints(tables, TARGET)
    assert (checkpoints.open_batches(), checkpoints.abandoned_batches()) == ([batch_of_a], [])
    checkpoints.commit(batch_of_a)
    report = microbatch(tables, moto_server, stream)

    assert (report.recovered_batches, report.released_batches) == ([], [])
    assert_bronze_holds_each_once(tables, sent + later)
    assert microbatch(tables, moto_server, stream).records_ingested == 0


def run_b_with_run_a_after_its_positions(
    tables: DeltaTables, moto: MotoServer, stream: str, between: Callable[[], None]
) -> None:
    """Run B reads the checkpoints' positions and the next ``batch_seq``; then run A runs through
    (under the same ``batch_seq``); then ``between``; then B reads, and loses its claim to A."""
    positions = Checkpoints.positions

    def positions_then_run_a(self: Checkpoints):
        found = positions(self)
        Checkpoints.positions = positions  # type: ignore[method-assign]
        microbatch(tables, moto, stream)  # run A
        between()
        return found

    Checkpoints.positions = positions_then_run_a  # type: ignore[method-assign]
    try:
        with pytest.raises(ClaimedElsewhereError):
            microbatch(tables, moto, stream)  # run B
    finally:
        Checkpoints.positions = positions  # type: ignore[method-assign]


@contextlib.contextmanager
def race_ids_sorting_the_loser_first(made: list[str]) -> Iterator[None]:
    """A and B share a ``batch_seq``, and their ids differ by digest: make the id of B (the second
    one made) sort before A's, the order in which a reader following ``_batch_id`` skips B's.
    The digests stay distinct (one character changed). ``made``: the ids made."""
    batch_id_of = stream_microbatch.batch_id_of
    first_characters = iter("f0")

    def sorted_as_wanted(stream: str, batch_seq: int, ranges: Sequence[ShardRange]) -> str:
        sequence, _, digest = batch_id_of(stream, batch_seq, ranges).partition("-")
        made.append(f"{sequence}-{next(first_characters, digest[0])}{digest[1:]}")
        return made[-1]

    stream_microbatch.batch_id_of = sorted_as_wanted
    try:
        yield
    finally:
        stream_microbatch.batch_id_of = batch_id_of


def views(prefix: str, count: int, start: datetime) -> list[str]:
    return [page_view(f"{prefix}{n}", start + timedelta(seconds=n)).data.decode() for n in range(count)]


def test_records_of_a_run_that_lost_reach_silver_after_silver_applied_the_winner(
    spark, layout, moto_server
) -> None:
    """A and B take the same ``batch_seq``; A reads the first shard only and wins; B also read the
    second shard, whose range nobody else claimed. silver.events then applies A's micro-batch,
    and B's id sorts before A's: B's records must still reach bronze, then silver, once."""
    stream = create_stream(moto_server, shards=2)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    start = datetime(2026, 11, 21, 10, tzinfo=UTC)
    sent = put_on(moto_server, stream, FIRST_SHARD_KEY, views("x", 5, start))
    microbatch(tables, moto_server, stream)
    sent += put_on(moto_server, stream, FIRST_SHARD_KEY, views("z", 5, start + timedelta(minutes=1)))

    def records_reach_the_second_shard() -> None:
        sent.extend(
            put_on(moto_server, stream, SECOND_SHARD_KEY, views("w", 5, start + timedelta(minutes=2)))
        )

    made: list[str] = []
    with race_ids_sorting_the_loser_first(made):
        run_b_with_run_a_after_its_positions(tables, moto_server, stream, records_reach_the_second_shard)
    id_of_a, id_of_b = made
    assert id_of_b < id_of_a and id_of_a.partition("-")[0] == id_of_b.partition("-")[0]
    run_table(tables, "silver.events", run_id="applies-a")
    microbatch(tables, moto_server, stream)
    run_table(tables, "silver.events", run_id="applies-the-rest")

    assert_bronze_holds_each_once(tables, sent)
    expected_ids = [f"{prefix}{n}" for prefix in "xzw" for n in range(5)]
    assert Counter(row["event_id"] for row in tables.read(SILVER_EVENTS).collect()) == Counter(expected_ids)


def test_a_batch_a_losing_run_left_claimed_in_part_is_released_and_read_again_later(
    tables, moto_server
) -> None:
    """As above, but B dies before deleting its claim of the second shard: the next run releases B's
    micro-batch, which never reached bronze, and reads its records under a greater id."""
    stream = create_stream(moto_server, shards=2)
    sent = put_on(moto_server, stream, FIRST_SHARD_KEY, records("x", 5))
    microbatch(tables, moto_server, stream)
    sent += put_on(moto_server, stream, FIRST_SHARD_KEY, records("z", 5))
    later: list[bytes] = []

    def records_reach_the_second_shard() -> None:
        later.extend(put_on(moto_server, stream, SECOND_SHARD_KEY, records("w", 5)))

    release = Checkpoints._release
    Checkpoints._release = lambda _self, _match: None  # type: ignore[method-assign]  # B dies first
    try:
        run_b_with_run_a_after_its_positions(tables, moto_server, stream, records_reach_the_second_shard)
    finally:
        Checkpoints._release = release  # type: ignore[method-assign]
    (abandoned,) = Checkpoints(tables, TARGET).abandoned_batches()
    ids_in_bronze = {row["_batch_id"] for row in bronze_records(tables)}
    report = microbatch(tables, moto_server, stream)

    assert report.released_batches == [abandoned.batch_id]
    assert stream_metadata(report)["lakehouse/released_micro_batches"] == [abandoned.batch_id]
    assert report.recovered_batches == []
    assert Checkpoints(tables, TARGET).abandoned_batches() == []
    assert_bronze_holds_each_once(tables, sent + later)
    ids_of_w = {row["_batch_id"] for row in bronze_records(tables) if row["data"].encode() in later}
    assert len(ids_of_w) == 1 and min(ids_of_w) > max(ids_in_bronze | {abandoned.batch_id})
    assert microbatch(tables, moto_server, stream).records_ingested == 0


def test_two_runs_at_the_same_moment_ingest_every_record_once(tables, layout, moto_server, sail_url) -> None:
    """Two sessions, started together: whichever interleaving happens, each record lands once."""
    stream = create_stream(moto_server, shards=2)
    sent = put_on(moto_server, stream, FIRST_SHARD_KEY, records("x", 30))
    sent += put_on(moto_server, stream, SECOND_SHARD_KEY, records("y", 30))
    lake = replace(layout, aws=moto_server.aws, landing_stream=stream)
    sessions = [DeltaTables(connect(sail_url), lake) for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(session: DeltaTables) -> None:
        barrier.wait()
        with contextlib.suppress(Exception):  # the loser: claimed elsewhere, or a conflicting commit
            ingest_stream(session, StreamSource(), TARGET, moto_server.client("kinesis"), stream, log=LOG)

    threads = [threading.Thread(target=run, args=(session,)) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for session in sessions:
        session.spark.stop()
    microbatch(tables, moto_server, stream)  # completes whatever a loser left open

    assert_bronze_holds_each_once(tables, sent)


@contextlib.contextmanager
def reads_as_of(versions: dict[TableName, int | None]) -> Iterator[None]:
    """Until the build first writes silver, its reads of the tables see these versions: the
    snapshot of a build that started then, while another build committed since."""
    read, insert_missing, append = DeltaTables.read, DeltaTables.insert_missing, DeltaTables.append
    state = {"stale": True}

    def stale_read(self, name, *, pinned=False):
        if state["stale"] and name in versions:
            return (
                self.spark.read.format("delta")
                .option("versionAsOf", str(versions[name]))
                .load(self.uri(name))
            )
        return read(self, name, pinned=pinned)

    def writing(write):
        def wrapped(self, name, frame, *args, **kwargs):
            if name == SILVER_EVENTS:
                state["stale"] = False
            return write(self, name, frame, *args, **kwargs)

        return wrapped

    DeltaTables.read = stale_read  # type: ignore[method-assign]
    DeltaTables.insert_missing = writing(insert_missing)  # type: ignore[method-assign]
    DeltaTables.append = writing(append)  # type: ignore[method-assign]
    try:
        yield
    finally:
        DeltaTables.read, DeltaTables.insert_missing, DeltaTables.append = read, insert_missing, append


def test_two_silver_builds_at_once_add_each_event_once_and_agree_on_the_watermark(
    spark, layout, moto_server
) -> None:
    """Build A starts (reads silver and its progress), build B runs through, then A writes: A
    adds nothing B added, and both record the watermark of the events accepted."""
    stream = create_stream(moto_server, shards=1)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    start = datetime(2026, 11, 21, 10, tzinfo=UTC)
    times = {f"e{n}": start + timedelta(seconds=n) for n in range(60)}
    put(moto_server, stream, [page_view("first", start - timedelta(minutes=1))])
    run_table(tables, "bronze.events")
    run_table(tables, "silver.events", run_id="earlier")
    put(moto_server, stream, [page_view(event_id, at) for event_id, at in times.items()])
    run_table(tables, "bronze.events")

    versions = {name: tables.version(name) for name in (SILVER_EVENTS, SILVER_PROGRESS)}
    run_table(tables, "silver.events", run_id="b")
    with reads_as_of(versions):
        run_table(tables, "silver.events", run_id="a")

    ids = Counter(row["event_id"] for row in tables.read(SILVER_EVENTS).collect())
    assert ids == Counter(["first", *times])
    progress = [row for row in tables.read(SILVER_PROGRESS).collect() if row["run_id"] in {"a", "b"}]
    assert {row["watermark"].replace(tzinfo=UTC) for row in progress} == {max(times.values())}


def claimants(monkeypatch, *names: str) -> None:
    """The next claims' writers are named ``names``, in order."""
    named = iter(names)
    fake = SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(named)))
    monkeypatch.setattr(stream_checkpoints, "uuid", fake)


def test_releasing_a_batch_left_in_part_spares_a_run_that_built_the_same_id_since(
    tables, monkeypatch
) -> None:
    """Two runs from the same positions over the same records build the same batch id. Run L
    lost one claim and left the others (it died); run C found them and is about to release them;
    meanwhile L's claims were deleted and run W claimed the same batch id in full. C's release
    must delete L's claims, not W's."""
    checkpoints = Checkpoints(tables, TARGET)
    ranges = (ShardRange("shard-a", "100", "110", 10, False), ShardRange("shard-b", "200", "205", 5, False))
    batch = MicroBatch(7, "000000000007-same", ranges)
    other = MicroBatch(9, "000000000009-other", ranges[:1])
    claimants(monkeypatch, "other", "loser", "winner")
    checkpoints.claim(other)  # holds shard-a from 100
    release = Checkpoints._release
    monkeypatch.setattr(Checkpoints, "_release", lambda _self, _match: None)  # L dies before cleaning up
    with pytest.raises(ClaimedElsewhereError):
        checkpoints.claim(batch)
    monkeypatch.setattr(Checkpoints, "_release", release)
    (found,) = checkpoints.abandoned_batches()  # run C's snapshot
    checkpoints._release({"batch_id": other.batch_id})
    checkpoints._release({"batch_id": batch.batch_id, "claimant": "loser"})  # L's claims go
    checkpoints.claim(batch)  # run W wins every claim under the same id

    checkpoints.release(found)  # run C goes on

    assert (checkpoints.abandoned_batches(), checkpoints.open_batches()) == ([], [batch])


def test_a_run_reads_nothing_new_while_another_runs_micro_batch_is_being_written(tables, moto_server) -> None:
    """Run A claimed the first shard's records and is slow to write them. Run B listed the batches
    left open before A's claim, and read the first shard from the same position but got an empty
    page (Kinesis may), so it would claim the second shard's records alone, under a greater id,
    land first, and silver.events would pass A's micro-batch for ever. B reads nothing new."""
    stream = create_stream(moto_server, shards=2)
    now = datetime.now(UTC)
    events = {
        shard_key: [page_view(f"{prefix}{n}", now).data.decode() for n in range(5)]
        for shard_key, prefix in ((FIRST_SHARD_KEY, "a"), (SECOND_SHARD_KEY, "b"))
    }
    sent = [
        text for shard_key, texts in events.items() for text in put_on(moto_server, stream, shard_key, texts)
    ]
    first_shard = moto_server.client("kinesis").list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    uncommitted, read, claim = (
        Checkpoints.uncommitted,
        stream_microbatch._MicroBatchRun._read,
        Checkpoints.claim,
    )
    held: dict[str, MicroBatch] = {}

    def a_claims_after_b_looked(self: Checkpoints) -> tuple[list[MicroBatch], list[MicroBatch]]:
        found = uncommitted(self)  # none left open

        def claim_instead_of_writing(_self: Checkpoints, batch: MicroBatch) -> None:
            claim(_self, batch)
            held["a"] = batch
            raise RuntimeError("run A is slow: still writing")

        with pytest.MonkeyPatch.context() as patch:  # run A: reads the first shard only, claims
            patch.setattr(
                stream_microbatch._MicroBatchRun,
                "_read",
                lambda run, shards, positions: [
                    r for r in read(run, shards, positions) if r.shard_id == first_shard
                ],
            )
            patch.setattr(Checkpoints, "claim", claim_instead_of_writing, raising=True)
            patch.setattr(Checkpoints, "uncommitted", uncommitted)
            with pytest.raises(RuntimeError, match="still writing"):
                microbatch(tables, moto_server, stream)
        return found

    def empty_page_on_the_first_shard(run, shards, positions):
        return [r for r in read(run, shards, positions) if r.shard_id != first_shard]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Checkpoints, "uncommitted", a_claims_after_b_looked)
        patch.setattr(stream_microbatch._MicroBatchRun, "_read", empty_page_on_the_first_shard)
        b = microbatch(tables, moto_server, stream)  # run B
    if tables.exists(TARGET):  # what B wrote, silver applies
        run_table(tables, "silver.events")
    microbatch(tables, moto_server, stream)  # completes A's micro-batch, then reads on
    microbatch(tables, moto_server, stream)
    run_table(tables, "silver.events")

    assert "a" in held
    assert_bronze_holds_each_once(tables, sent)
    in_silver = {row["event_id"] for row in tables.read(SILVER_EVENTS).collect()}
    assert in_silver == {json.loads(text)["event_id"] for text in sent}
    assert b.records_ingested == 0
