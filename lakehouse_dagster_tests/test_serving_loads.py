"""Loads into a real PostgreSQL warehouse: exact values, ranges, atomicity, schema changes,
concurrent readers. Lake tables are written here with deltalake."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import deltalake
import psycopg
import pyarrow as pa
import pytest

from lakehouse_dagster.lake.snapshots import LakeSnapshot, LakeTableMissingError
from lakehouse_dagster.serving import local_server
from lakehouse_dagster.serving.postgres import PostgresWarehouse
from lakehouse_dagster.serving.schema import IncompatibleSchemaError, holds
from lakehouse_dagster.serving.spec import DateRange, ServedTable
from lakehouse_dagster.serving.warehouse import WarehouseLoadError, WarehouseUnavailableError

DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(5)]
DAILY = ServedTable("daily", "gold.daily", "Per day and shop.", ("day", "shop"), "day")
WHOLE = ServedTable("whole", "gold.whole", "One row per id.", ("id",))


def daily_rows(version: int, days=DAYS, shops=("north", "south")) -> pa.Table:
    records = [
        {"day": day, "shop": shop, "amount": Decimal(f"{version}{i}.{j:02d}"), "orders": version * 100 + i}
        for i, day in enumerate(days)
        for j, shop in enumerate(shops)
    ]
    return pa.Table.from_pylist(
        records,
        schema=pa.schema(
            [
                ("day", pa.date32()),
                ("shop", pa.string()),
                ("amount", pa.decimal128(12, 2)),
                ("orders", pa.int64()),
            ]
        ),
    )


def whole_rows(version: int, n: int = 10) -> pa.Table:
    return pa.table(
        {"id": pa.array(range(n), pa.int64()), "value": pa.array([f"v{version}-{i}" for i in range(n)])}
    )


def write(uri: Path, table: pa.Table, **options) -> LakeSnapshot:
    deltalake.write_deltalake(str(uri), table, mode="overwrite", **options)
    return LakeSnapshot("gold.x", str(uri))


def load(warehouse: PostgresWarehouse, served: ServedTable, snapshot: LakeSnapshot, window=None, rows=None):
    return warehouse.load(
        served,
        rows if rows is not None else snapshot.rows(served.partition_column, window),
        window=window,
        source_version=snapshot.version,
        run_id="test",
    )


def select(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


def first_whole_load(warehouse: PostgresWarehouse, url: str, uri: Path) -> list[tuple]:
    """``serving.whole`` after its first load, from version 1 of the lake table at ``uri``."""
    load(warehouse, WHOLE, write(uri, whole_rows(1)))
    return served_whole(url)


def served_whole(url: str) -> list[tuple]:
    return select(url, "SELECT * FROM serving.whole ORDER BY id")


@pytest.fixture
def warehouse(warehouse_url: str) -> PostgresWarehouse:
    return PostgresWarehouse(url=warehouse_url)


def test_hostile_values_and_names_arrive_exactly(warehouse, warehouse_url, tmp_path) -> None:
    texts = ["plain", 'quo"te', "comma, and\nnewline", "back\\slash \\N", "", None, "ünïcødé ✓", "NULL"]
    n = len(texts)
    frame = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "Text Column": pa.array(texts, pa.string()),
            'odd "name"': pa.array([i % 2 == 0 if i != 3 else None for i in range(n)], pa.bool_()),
            "money": pa.array(
                [Decimal("99999999999999999999999999.999999999999"), Decimal("-0.000000000001"), None]
                + [(Decimal(i) / 7).quantize(Decimal("1e-12")) for i in range(n - 3)],
                pa.decimal128(38, 12),
            ),
            "ratio": pa.array([0.1, 1 / 3, -0.0, 1e308, 5e-324, math.inf, -math.inf, math.nan]),
            "small": pa.array([i - 4 for i in range(n)], pa.int32()),
            "at": pa.array(
                [datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC) + timedelta(hours=i) for i in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "local_at": pa.array([datetime(1999, 12, 31, 23, 59, 59, 999999)] * n, pa.timestamp("us")),
            "on": pa.array([date(1, 1, 1), date(9999, 12, 31)] + [None] * (n - 2), pa.date32()),
        }
    )
    snapshot = write(tmp_path / "hostile", frame)
    served = ServedTable("hostile", "gold.hostile", "Hostile values.", ("id",))

    result = load(warehouse, served, snapshot)

    assert result.rows == n and result.created
    quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in frame.column_names)
    loaded = select(warehouse_url, f"SELECT {quoted} FROM serving.hostile ORDER BY id")
    for index, column in enumerate(frame.column_names):
        expected = frame.column(column).to_pylist()
        actual = [row[index] for row in loaded]
        if column == "ratio":
            assert math.isnan(actual[-1]) and actual[:-1] == expected[:-1]
            assert math.copysign(1, actual[2]) == -1.0, "negative zero keeps its sign"
        else:
            assert actual == expected, column


def test_a_range_load_replaces_only_its_days_and_a_reload_is_idempotent(
    warehouse, warehouse_url, tmp_path
) -> None:
    uri = tmp_path / "daily"
    first = write(uri, daily_rows(1), partition_by=["day"])
    load(warehouse, DAILY, first, DateRange(DAYS[0], DAYS[-1] + timedelta(days=1)))
    second = write(uri, daily_rows(2), partition_by=["day"])
    window = DateRange(DAYS[1], DAYS[3])

    load(warehouse, DAILY, second, window)
    once = select(warehouse_url, "SELECT day, shop, amount, orders FROM serving.daily ORDER BY day, shop")
    load(warehouse, DAILY, second, window)
    twice = select(warehouse_url, "SELECT day, shop, amount, orders FROM serving.daily ORDER BY day, shop")

    assert once == twice
    expected = [
        tuple(row.values())
        for version, day_rows in ((1, daily_rows(1)), (2, daily_rows(2)))
        for row in day_rows.to_pylist()
        if (window.start <= row["day"] < window.end) == (version == 2)
    ]
    assert once == sorted(expected)
    assert warehouse.counts_by_day(DAILY) == {day: 2 for day in DAYS}
    loads = warehouse.loads(DAILY)
    assert {(load.start, load.end) for load in loads} == {
        (DAYS[0], DAYS[-1] + timedelta(days=1)),
        (DAYS[1], DAYS[3]),
    }
    assert warehouse.loaded_at(DAILY, DAYS[2]) > warehouse.loaded_at(DAILY, DAYS[0])
    assert warehouse.loaded_at(DAILY, DAYS[0] - timedelta(days=1)) is None


def test_a_table_dropped_to_be_reloaded_counts_only_the_loads_since(
    warehouse, warehouse_url, tmp_path
) -> None:
    """The schema-change advice drops the warehouse table: its earlier loads no longer hold any
    day, so the days not loaded again show as stale (``loaded_after_lake``)."""
    snapshot = write(tmp_path / "daily", daily_rows(1), partition_by=["day"])
    load(warehouse, DAILY, snapshot, DateRange(DAYS[0], DAYS[-1] + timedelta(days=1)))
    with psycopg.connect(warehouse_url) as connection:
        connection.execute("DROP TABLE serving.daily")

    assert warehouse.loads(DAILY) == []
    load(warehouse, DAILY, snapshot, DateRange(DAYS[1], DAYS[2]))

    assert [(load.start, load.end) for load in warehouse.loads(DAILY)] == [(DAYS[1], DAYS[2])]
    assert warehouse.loaded_at(DAILY, DAYS[0]) is None
    assert warehouse.counts_by_day(DAILY) == {DAYS[1]: 2}


def test_an_empty_range_empties_its_days_only(warehouse, tmp_path) -> None:
    uri = tmp_path / "daily"
    snapshot = write(uri, daily_rows(1), partition_by=["day"])
    load(warehouse, DAILY, snapshot, DateRange(DAYS[0], DAYS[-1] + timedelta(days=1)))
    emptied = write(uri, daily_rows(3, days=[DAYS[0]]), partition_by=["day"])
    result = load(warehouse, DAILY, emptied, DateRange(DAYS[1], DAYS[2]))
    assert result.rows == 0
    assert warehouse.counts_by_day(DAILY) == {DAYS[0]: 2, DAYS[2]: 2, DAYS[3]: 2, DAYS[4]: 2}


def failing_after_first_batch(rows: pa.Table) -> pa.RecordBatchReader:
    def batches():
        yield rows.to_batches(max_chunksize=3)[0]
        raise OSError("the lake went away in the middle of the load")

    return pa.RecordBatchReader.from_batches(rows.schema, batches())


def test_a_failure_in_the_middle_of_a_load_leaves_the_previous_rows(
    warehouse, warehouse_url, tmp_path
) -> None:
    uri = tmp_path / "whole"
    before = first_whole_load(warehouse, warehouse_url, uri)
    newer = write(uri, whole_rows(2))

    with pytest.raises(OSError, match="went away"):
        load(warehouse, WHOLE, newer, rows=failing_after_first_batch(whole_rows(2)))
    assert served_whole(warehouse_url) == before

    duplicated = write(uri, pa.concat_tables([whole_rows(3), whole_rows(3)]))
    with pytest.raises(WarehouseLoadError, match=r"serving\.whole \(from gold\.whole\).*UniqueViolation"):
        load(warehouse, WHOLE, duplicated)  # fails after the old rows were deleted
    assert served_whole(warehouse_url) == before
    assert len(warehouse.loads(WHOLE)) == 1


def test_a_value_the_warehouse_cannot_hold_fails_naming_the_table_and_keeps_it(
    warehouse, warehouse_url, tmp_path
) -> None:
    uri = tmp_path / "whole"
    before = first_whole_load(warehouse, warehouse_url, uri)
    with_nul = pa.table({"id": pa.array([1], pa.int64()), "value": pa.array(["a\x00b"])})

    with pytest.raises(WarehouseLoadError, match=r"serving\.whole \(from gold\.whole\).*0x00"):
        load(warehouse, WHOLE, write(uri, with_nul))

    assert served_whole(warehouse_url) == before


def test_a_failed_first_load_creates_nothing(warehouse, warehouse_url, tmp_path) -> None:
    snapshot = write(tmp_path / "daily", daily_rows(1), partition_by=["day"])
    with pytest.raises(OSError):
        load(
            warehouse,
            DAILY,
            snapshot,
            DateRange(DAYS[0], DAYS[1]),
            rows=failing_after_first_batch(daily_rows(1)),
        )
    assert warehouse.row_count(DAILY) is None
    assert select(warehouse_url, "SELECT to_regclass('serving.daily')") == [(None,)]


def test_a_new_lake_column_is_added_and_an_incompatible_change_names_the_column(
    warehouse, warehouse_url, tmp_path
) -> None:
    uri = tmp_path / "daily"
    load(
        warehouse,
        DAILY,
        write(uri, daily_rows(1), partition_by=["day"]),
        DateRange(DAYS[0], DAYS[-1] + timedelta(days=1)),
    )
    wider = daily_rows(2).append_column("channel", pa.array(["web"] * 10))
    snapshot = write(uri, wider, partition_by=["day"], schema_mode="overwrite")

    result = load(warehouse, DAILY, snapshot, DateRange(DAYS[0], DAYS[1]))

    assert result.columns_added == ("channel",)
    channels = select(warehouse_url, "SELECT day, channel FROM serving.daily ORDER BY day, shop")
    assert [c for d, c in channels if d == DAYS[0]] == ["web", "web"]
    assert {c for d, c in channels if d != DAYS[0]} == {None}, "days not reloaded have no value yet"

    before = select(warehouse_url, "SELECT * FROM serving.daily ORDER BY day, shop")
    as_text = wider.set_column(3, "orders", pa.array([str(v) for v in wider.column("orders").to_pylist()]))
    changed = write(uri, as_text, partition_by=["day"], schema_mode="overwrite")
    with pytest.raises(IncompatibleSchemaError, match=r"column 'orders' is bigint in the warehouse but text"):
        load(warehouse, DAILY, changed, DateRange(DAYS[0], DAYS[1]))
    dropped = write(uri, wider.drop_columns(["amount"]), partition_by=["day"], schema_mode="overwrite")
    with pytest.raises(
        IncompatibleSchemaError, match=r"column 'amount' is in the warehouse but no longer in gold.daily"
    ):
        load(warehouse, DAILY, dropped, DateRange(DAYS[0], DAYS[1]))
    nested = write(
        uri,
        wider.append_column("tags", pa.array([["a"]] * 10)),
        partition_by=["day"],
        schema_mode="overwrite",
    )
    with pytest.raises(IncompatibleSchemaError, match="column 'tags' has type list"):
        load(warehouse, DAILY, nested, DateRange(DAYS[0], DAYS[1]))
    assert select(warehouse_url, "SELECT * FROM serving.daily ORDER BY day, shop") == before


@pytest.mark.parametrize(
    ("warehouse_type", "lake_type", "held"),
    [
        ("bigint", "integer", True),
        ("integer", "bigint", False),
        ("double precision", "real", True),
        ("numeric(14,2)", "numeric(12,2)", True),
        ("numeric(12,2)", "numeric(12,3)", False),
        ("numeric(12,2)", "numeric(13,2)", False),
        ("numeric(21,2)", "bigint", True),
        ("numeric(20,2)", "bigint", False),
        ("double precision", "numeric(12,2)", False),
        ("text", "bigint", False),
    ],
)
def test_which_type_changes_the_warehouse_can_hold(warehouse_type, lake_type, held) -> None:
    assert holds(warehouse_type, lake_type) is held


def test_readers_during_swaps_never_see_an_error_an_empty_or_a_mixed_table(
    warehouse, warehouse_url, tmp_path
) -> None:
    """A reader queries in a loop while the table is swapped between two versions of 20,000 rows."""
    uri = tmp_path / "whole"
    versions = []
    for version in (1, 2):
        ids = pa.array(range(20_000), pa.int64())
        versions.append(pa.table({"id": ids, "version": pa.array([version] * 20_000, pa.int64())}))
    load(warehouse, WHOLE, write(uri, versions[0]))
    seen, errors, done = [], [], threading.Event()

    def read() -> None:
        with psycopg.connect(warehouse_url, autocommit=True) as connection:
            while not done.is_set():
                try:
                    seen.append(
                        connection.execute(
                            "SELECT count(*), min(version), max(version) FROM serving.whole"
                        ).fetchone()
                    )
                except Exception as error:
                    errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for swap in range(6):
            load(warehouse, WHOLE, write(uri, versions[(swap + 1) % 2]))
    finally:
        done.set()
        reader.join(timeout=30)
    assert errors == []
    assert len(seen) > 20, "the reader ran during the swaps"
    assert set(seen) <= {(20_000, 1, 1), (20_000, 2, 2)}
    assert {(20_000, 1, 1), (20_000, 2, 2)} <= set(seen), "the reader saw both versions"


def test_a_missing_lake_table_or_warehouse_says_what_to_do(tmp_path, monkeypatch) -> None:
    with pytest.raises(LakeTableMissingError, match="materialise it before serving"):
        LakeSnapshot("gold.nothing", str(tmp_path / "nothing"))
    local = PostgresWarehouse(local_dir=str(tmp_path / ".warehouse"))
    with pytest.raises(WarehouseUnavailableError, match="make warehouse"):
        local.row_count(WHOLE)
    (tmp_path / ".warehouse").mkdir()
    (tmp_path / ".warehouse" / "url").write_text(
        f"postgresql://lakehouse@127.0.0.1:{local_server.free_port()}/lakehouse\n"
    )
    with pytest.raises(WarehouseUnavailableError, match="Is it running"):
        local.row_count(WHOLE)


def test_without_postgresql_the_error_names_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(local_server.shutil, "which", lambda name: None)
    monkeypatch.setattr(local_server.glob, "glob", lambda pattern: [])
    with pytest.raises(local_server.PostgresNotInstalledError, match="apt-get install postgresql"):
        local_server.find_binaries()
    assert local_server.main(["start", "--dir", "/nonexistent/warehouse"]) == 2


def test_the_local_server_starts_once_records_its_url_and_stops(tmp_path) -> None:
    folder = Path("/tmp") / f"lakehouse-pg-test-{tmp_path.name}"
    folder.mkdir(mode=0o755)
    server = local_server.LocalPostgres(folder)
    try:
        url = server.start(durable=False)
        assert server.start() == url, "starting a running server changes nothing"
        assert (folder / "url").read_text().strip() == url
        assert select(url, "SELECT current_database(), current_user") == [("lakehouse", "lakehouse")]
        assert server.stop() and not server.running() and not (folder / "url").exists()
        assert server.stop() is False
    finally:
        server.stop()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def test_two_starts_at_once_share_one_server(tmp_path) -> None:
    """Two `make run` (or `make run` and `make dashboard`) starting a new warehouse together."""
    folder = Path("/tmp") / f"lakehouse-pg-race-{tmp_path.name}"
    folder.mkdir(mode=0o755)
    command = [sys.executable, "-m", "lakehouse_dagster.serving.local_server", "start", "--dir", str(folder)]
    try:
        starts = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outcomes = [(start.wait(timeout=180), *start.communicate()) for start in starts]
        assert [code for code, _, _ in outcomes] == [0, 0], outcomes
        url = (folder / "url").read_text().strip()
        assert select(url, "SELECT 1") == [(1,)]
    finally:
        local_server.LocalPostgres(folder).stop()
        shutil.rmtree(folder, ignore_errors=True)
