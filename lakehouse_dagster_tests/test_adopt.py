"""Staged Parquet files committed to a Delta table without a copy (``lake/adopt.py``)."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse_dagster.lake import adopt
from lakehouse_dagster.lake.delta import DeltaRsLog

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("small", pa.int32()),
        ("name", pa.string()),
        ("price", pa.decimal128(12, 2)),
        ("day", pa.date32()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("flag", pa.bool_()),
        ("ratio", pa.float64()),
    ]
)


def sample(rows: int, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": [offset + i if i % 7 else None for i in range(rows)],
            "small": [(i * 37) % 1000 - 500 for i in range(rows)],
            "name": [f"name {(i * 13) % 97}" if i % 5 else None for i in range(rows)],
            "price": [Decimal(f"{(i * 31) % 10000}.{i % 100:02d}") for i in range(rows)],
            "day": [date(2026, 1 + i % 12, 1 + i % 28) for i in range(rows)],
            "at": [
                datetime(2026, 3, 1, 12, 0, i % 60, (i * 7919) % 1_000_000, tzinfo=UTC) for i in range(rows)
            ],
            "flag": [i % 2 == 0 for i in range(rows)],
            "ratio": [i / 3 for i in range(rows)],
        },
        schema=SCHEMA,
    )


def delta_rs_statistics(table: pa.Table, folder: Path) -> dict:
    """What delta-rs's own writer records for the same rows: the oracle."""
    deltalake.write_deltalake(str(folder), table)
    commit = (folder / "_delta_log" / "00000000000000000000.json").read_text().splitlines()
    (add,) = [json.loads(line)["add"] for line in commit if '"add"' in line]
    return json.loads(add["stats"])


def test_footer_statistics_agree_with_delta_rs_for_the_columns_they_cover(tmp_path: Path) -> None:
    table = sample(5_000)
    pq.write_table(table, tmp_path / "staged.parquet", row_group_size=1_000)  # bounds over 5 groups
    ours = json.loads(adopt.statistics_json(pq.read_metadata(tmp_path / "staged.parquet")))
    theirs = delta_rs_statistics(table, tmp_path / "oracle")

    assert ours["numRecords"] == theirs["numRecords"] == 5_000
    assert ours["nullCount"] == {name: theirs["nullCount"][name] for name in ours["nullCount"]}
    assert set(ours["nullCount"]) == set(SCHEMA.names)
    for bound in ("minValues", "maxValues"):
        assert set(ours[bound]) == {"id", "small", "name", "price", "day", "at"}
        assert ours[bound] == {name: theirs[bound][name] for name in ours[bound]}


def test_bounds_hold_every_value(tmp_path: Path) -> None:
    table = sample(3_000)
    pq.write_table(table, tmp_path / "staged.parquet", row_group_size=700)
    stats = json.loads(adopt.statistics_json(pq.read_metadata(tmp_path / "staged.parquet")))
    ids = [v for v in table.column("id").to_pylist() if v is not None]
    assert (stats["minValues"]["id"], stats["maxValues"]["id"]) == (min(ids), max(ids))
    prices = table.column("price").to_pylist()
    assert (stats["minValues"]["price"], stats["maxValues"]["price"]) == (
        float(min(prices)),
        float(max(prices)),
    )


def test_long_text_and_wide_decimals_have_no_bounds(tmp_path: Path) -> None:
    table = pa.table(
        {"text": ["x" * 300, "y"], "wide": pa.array([Decimal("1.5"), Decimal("2.5")], pa.decimal128(30, 1))}
    )
    pq.write_table(table, tmp_path / "staged.parquet")
    stats = json.loads(adopt.statistics_json(pq.read_metadata(tmp_path / "staged.parquet")))
    assert stats["minValues"] == {} and stats["maxValues"] == {}
    assert stats["nullCount"] == {"text": 0, "wide": 0}


@pytest.mark.parametrize(
    ("staged", "expected"),
    [
        (SCHEMA, True),
        (pa.schema(list(reversed(list(SCHEMA)))), True),  # columns are read by name
        (SCHEMA.append(pa.field("extra", pa.string())), False),  # a new column: schema merge
        (SCHEMA.set(0, pa.field("id", pa.int32())), False),
    ],
)
def test_only_files_with_the_tables_columns_are_adopted(staged: pa.Schema, expected: bool) -> None:
    assert adopt.adoptable(SCHEMA, staged) is expected


def test_an_adopted_batch_reads_back_and_lands_once(tmp_path: Path) -> None:
    lake = tmp_path / "table"
    log = DeltaRsLog()
    batches = {"first": sample(1_000), "second": sample(500, offset=10_000)}
    for token, rows in batches.items():
        staged = tmp_path / f"staged-{token}"
        staged.mkdir()
        pq.write_table(rows, staged / "data.parquet")
        assert log.append_staged(str(lake), str(staged), token, ())
        assert not list(staged.iterdir())  # moved, not copied

    again = tmp_path / "staged-again"
    again.mkdir()
    pq.write_table(batches["second"], again / "data.parquet")
    assert not log.append_staged(str(lake), str(again), "second", ())  # the token is there

    read = deltalake.DeltaTable(str(lake)).to_pyarrow_table().sort_by("small")
    expected = pa.concat_tables(batches.values()).sort_by("small")
    assert read.num_rows == 1_500
    assert sorted(map(str, read.column("id").to_pylist())) == sorted(
        map(str, expected.column("id").to_pylist())
    )
    data_files = sorted(p.name for p in lake.iterdir() if p.suffix == ".parquet")
    assert len(data_files) == 2  # the refused batch left no file behind


@pytest.mark.parametrize("table_kind", ["partitioned", "constrained", "required column"])
def test_a_table_that_places_or_validates_rows_gets_the_ordinary_write(
    tmp_path: Path, table_kind: str
) -> None:
    """An adopted file carries no partition values and is not validated: such a table's batch is
    written the ordinary way, rows in their partitions and checked."""
    lake = str(tmp_path / "table")
    existing = pa.table({"id": pa.array([1], pa.int64()), "country": pa.array(["FR"])})
    if table_kind == "partitioned":
        deltalake.write_deltalake(lake, existing, partition_by=["country"])
    elif table_kind == "constrained":
        deltalake.write_deltalake(lake, existing)
        deltalake.DeltaTable(lake).alter.add_constraint({"positive_id": "id > 0"})
    else:
        schema = pa.schema([pa.field("id", pa.int64(), nullable=False), ("country", pa.string())])
        deltalake.write_deltalake(lake, existing.cast(schema))
    staged = tmp_path / "staged"
    staged.mkdir()
    bad_id = None if table_kind == "required column" else -7
    batch = pa.table({"id": pa.array([3, bad_id], pa.int64()), "country": pa.array(["DE", "DE"])})
    pq.write_table(batch, staged / "data.parquet")

    if table_kind == "partitioned":
        assert DeltaRsLog().append_staged(lake, str(staged), "batch", ())
        read = deltalake.DeltaTable(lake).to_pyarrow_table().to_pylist()
        assert sorted(row["country"] for row in read) == ["DE", "DE", "FR"]
    else:
        with pytest.raises(Exception, match=r"(?i)check|null"):
            DeltaRsLog().append_staged(lake, str(staged), "batch", ())
        assert deltalake.DeltaTable(lake).to_pyarrow_table().num_rows == 1, "nothing committed"


def test_small_tables_are_staged_as_few_row_groups(tmp_path: Path) -> None:
    from lakehouse_dagster.lake.files import parquet_writer

    tables = [sample(10, offset=10 * i) for i in range(10)]  # ten small files' rows
    with parquet_writer(str(tmp_path / "staged.parquet"), SCHEMA, min_row_group_rows=25) as writer:
        for table in tables:
            writer.write_table(table)
    metadata = pq.read_metadata(tmp_path / "staged.parquet")
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [30, 30, 30, 10]
    assert pq.read_table(tmp_path / "staged.parquet").equals(pa.concat_tables(tables))


def test_threads_staging_side_by_side_each_write_a_file_of_their_own(tmp_path: Path) -> None:
    from lakehouse_dagster.lake.files import list_parquet, parquet_per_thread

    tables = [sample(10, offset=10 * i) for i in range(12)]
    both_running = threading.Barrier(2)
    calls = itertools.count()
    writers: set[int] = set()

    def stage(table: pa.Table) -> None:
        if next(calls) < 2:
            both_running.wait(timeout=10)  # the first two tables are written by two threads
        writers.add(threading.get_ident())
        staged.write_table(table)

    with parquet_per_thread(str(tmp_path / "batch"), SCHEMA) as staged, ThreadPoolExecutor(2) as pool:
        list(pool.map(stage, tables))

    files = list_parquet(str(tmp_path / "batch"))
    assert len(files) == len(writers) == 2
    written = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert sorted(map(repr, written)) == sorted(repr(row) for t in tables for row in t.to_pylist())
    assert all(pq.read_schema(f).equals(SCHEMA) for f in files)


def test_statistics_skip_nested_columns_and_keep_the_flat_ones_in_place(tmp_path: Path) -> None:
    """A struct spans several Parquet columns: the flat columns after it keep their own bounds."""
    table = pa.table(
        {
            "key": [3, 1, 2],
            "span": [{"at": 5, "seq": "b"}, {"at": None, "seq": "a"}, {"at": 9, "seq": None}],
            "tags": [["x"], [], ["y", "z"]],
            "amount": [7, -4, 30],
        }
    )
    pq.write_table(table, tmp_path / "staged.parquet")
    stats = json.loads(adopt.statistics_json(pq.read_metadata(tmp_path / "staged.parquet")))
    assert stats["minValues"] == {"key": 1, "amount": -4}
    assert stats["maxValues"] == {"key": 3, "amount": 30}
    assert stats["nullCount"] == {"key": 0, "amount": 0}


def staged_folder(folder: Path, rows: pa.Table) -> str:
    folder.mkdir()
    pq.write_table(rows, folder / "data.parquet")
    return str(folder)


def test_of_creators_racing_for_a_new_table_exactly_one_commits(tmp_path: Path) -> None:
    """Appends never conflict, so a first build that appended would land once per creator."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    lake, log, creators = tmp_path / "table", DeltaRsLog(), 6
    staged = [
        staged_folder(tmp_path / f"staged-{i}", sample(2_000, offset=100_000 * i)) for i in range(creators)
    ]
    start = Barrier(creators)

    def create(folder: str) -> bool:
        start.wait()
        return log.create_staged(str(lake), folder)

    with ThreadPoolExecutor(creators) as pool:
        results = list(pool.map(create, staged))

    assert results.count(True) == 1
    read = deltalake.DeltaTable(str(lake))
    assert read.version() == 0
    ids = sorted(v for v in read.to_pyarrow_table().column("id").to_pylist() if v is not None)
    expected = sorted(
        v
        for v in sample(2_000, offset=100_000 * results.index(True)).column("id").to_pylist()
        if v is not None
    )
    assert ids == expected
    data_files = [p for p in lake.iterdir() if p.suffix == ".parquet"]
    assert len(data_files) == 1  # the losers' files were taken back


def test_creating_a_table_that_exists_commits_nothing(tmp_path: Path) -> None:
    lake, log = tmp_path / "table", DeltaRsLog()
    assert log.create_staged(str(lake), staged_folder(tmp_path / "first", sample(10)))
    assert not log.create_staged(str(lake), staged_folder(tmp_path / "second", sample(20)))
    read = deltalake.DeltaTable(str(lake))
    assert (read.version(), read.to_pyarrow_table().num_rows) == (0, 10)


def test_a_table_created_with_its_rows_reads_them_back_and_refuses_a_second_creator(tables) -> None:
    from lakehouse_dagster.lake.delta import ConcurrentWriteError
    from lakehouse_dagster.lake.layout import TableName

    name = TableName("silver", "created")
    rows = [(i, f"name {i}", {"at": i * 10, "seq": str(i)}) for i in range(50)]
    schema = "id BIGINT, name STRING, span STRUCT<at: BIGINT, seq: STRING>"
    tables.create(name, tables.spark.createDataFrame(rows, schema))
    with pytest.raises(ConcurrentWriteError, match=r"silver\.created"):
        tables.create(name, tables.spark.createDataFrame(rows[:5], schema))

    read = sorted((r.id, r.name, r.span.at, r.span.seq) for r in tables.read(name).collect())
    assert read == [(i, name_, span["at"], span["seq"]) for i, name_, span in rows]
    assert tables.version(name) == 0
    assert tables.commit_metrics(name, None)["rows_inserted"] == 50


def test_a_table_created_from_no_rows_is_empty_with_the_frames_columns(tables) -> None:
    from lakehouse_dagster.lake.layout import TableName

    name = TableName("silver", "created_empty")
    frame = tables.spark.createDataFrame([(1, "a")], "id BIGINT, name STRING").where("id > 1")
    tables.create(name, frame)
    assert tables.read(name).count() == 0
    assert [(c.name, c.type) for c in tables.columns(name)] == [("id", "bigint"), ("name", "string")]
