"""Partitioned tables written from staged Parquet files: created with their rows, and a window
of daily partitions replaced (``DeltaTables.replace_window`` on the embedded engine,
``DeltaRsLog.replace_staged``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import deltalake
import pytest

from lakehouse_dagster.lake import adopt
from lakehouse_dagster.lake.delta import ConcurrentWriteError, DateWindow, DeltaTables
from lakehouse_dagster.lake.layout import TableName

TABLE = TableName("silver", "daily")
SCHEMA = "d DATE, id BIGINT, note STRING"
FIRST = date(2026, 3, 1)


def day(n: int) -> date:
    return FIRST + timedelta(days=n)


def window(first: int, end: int) -> DateWindow:
    return DateWindow("d", day(first), day(end))


def rows_of(days: range, offset: int) -> list[tuple[date, int, str | None]]:
    return [
        (day(n), offset + 10 * n + i, f"row {i}" if i % 3 else None) for n in days for i in range(n % 4 + 1)
    ]


def table_rows(tables: DeltaTables) -> list[tuple[date, int, str | None]]:
    return sorted((r.d, r.id, r.note) for r in tables.read(TABLE).collect())


def files_on_disk(tables: DeltaTables) -> set[str]:
    folder = Path(tables.uri(TABLE))
    return {str(path.relative_to(folder)) for path in folder.rglob("*.parquet")}


def files_committed(tables: DeltaTables) -> set[str]:
    folder = Path(tables.uri(TABLE))
    return {str(Path(path).relative_to(folder)) for path in deltalake.DeltaTable(str(folder)).file_uris()}


@pytest.fixture
def seeded(tables: DeltaTables) -> list[tuple[date, int, str | None]]:
    """Days 0 to 6, each with 1 to 4 rows."""
    seed = rows_of(range(7), 0)
    frame = tables.spark.createDataFrame(seed, SCHEMA)
    tables.replace_window(TABLE, frame, window(0, 7), partition_by=("d",))
    assert table_rows(tables) == sorted(seed)
    assert tables.log.takes_staged_partitions(tables.uri(TABLE), "d"), "a plain table, partitioned by day"
    return seed


def test_a_window_is_replaced_in_one_commit_and_the_other_days_stay(tables, seeded) -> None:
    new = [row for row in rows_of(range(2, 5), 1000) if row[0] != day(3)]  # day 3 ends empty
    before = tables.version(TABLE)

    tables.replace_window(TABLE, tables.spark.createDataFrame(new, SCHEMA), window(2, 5))

    kept = [row for row in seeded if not day(2) <= row[0] < day(5)]
    assert table_rows(tables) == sorted(kept + new)
    assert tables.version(TABLE) == before + 1, "one commit"
    assert tables.commit_metrics(TABLE, before)["rows_inserted"] == len(new)
    in_window = [
        path for path in files_committed(tables) if path.split("/")[0] in ("d=2026-03-03", "d=2026-03-05")
    ]
    assert len(in_window) == 2, "the staged file of each day with rows, as it is"


def test_a_window_replaced_by_no_rows_is_emptied(tables, seeded) -> None:
    empty = tables.spark.createDataFrame([], SCHEMA)
    tables.replace_window(TABLE, empty, window(5, 7))
    assert table_rows(tables) == sorted(row for row in seeded if row[0] < day(5))


@pytest.mark.parametrize(
    ("ddl", "null_row"), [("d DATE, id BIGINT", (None, 1)), ("d STRING, id BIGINT", (None, 1))]
)
def test_a_null_partition_value_is_written_null(tables, ddl: str, null_row: tuple) -> None:
    """The engine's Parquet writer names a null date's folder 1970-01-01: staged partitions
    must not turn a null into a date."""
    name = TableName("silver", "with_nulls")
    value = date(2026, 1, 1) if ddl.startswith("d DATE") else "a/b c%"
    tables.create(name, tables.spark.createDataFrame([null_row, (value, 2)], ddl), partition_by=("d",))
    assert sorted((r.id, r.d) for r in tables.read(name).collect()) == [(1, None), (2, value)]


@pytest.mark.parametrize(
    "ddl", [SCHEMA, "d DATE, id INT, note STRING"], ids=["the table's types", "other types"]
)
@pytest.mark.parametrize("stray", [day(9), None], ids=["a later day", "no day"])
def test_rows_outside_the_window_are_refused_and_the_table_is_unchanged(tables, seeded, stray, ddl) -> None:
    """Whatever the rows' types: files of other types would get the engine's write, which would
    take the stray rows."""
    rows = [(day(1), 500, "in"), (stray, 501, "out")]
    before, committed = tables.version(TABLE), files_committed(tables)

    with pytest.raises(ValueError, match=rf"silver/daily: rows with d = {stray} are outside the window"):
        tables.replace_window(TABLE, tables.spark.createDataFrame(rows, ddl), window(1, 2))

    assert (tables.version(TABLE), table_rows(tables)) == (before, sorted(seeded))
    assert files_on_disk(tables) == committed, "no file moved in"
    assert not list(Path(tables.layout.staging_root(TABLE)).rglob("*.parquet")), "staging cleared"


def test_a_commit_landing_meanwhile_fails_the_replace_and_leaves_no_file(tables, seeded, monkeypatch) -> None:
    """Another writer commits after this replace read the table, while its files move in: the
    commit is refused (the unit runs again), and the files it moved are deleted."""
    on_disk = files_on_disk(tables)
    mine = rows_of(range(1, 3), 2000)
    theirs = rows_of(range(1, 3), 3000)
    move = adopt.move_into_table
    calls = []

    def competitor_commits_first(table_uri, files):
        calls.append(table_uri)
        if len(calls) == 1:
            tables.replace_window(TABLE, tables.spark.createDataFrame(theirs, SCHEMA), window(1, 3))
        return move(table_uri, files)

    monkeypatch.setattr(adopt, "move_into_table", competitor_commits_first)
    with pytest.raises(ConcurrentWriteError, match=r"silver\.daily: another writer committed"):
        tables.replace_window(TABLE, tables.spark.createDataFrame(mine, SCHEMA), window(1, 3))

    assert table_rows(tables) == sorted([row for row in seeded if not day(1) <= row[0] < day(3)] + theirs)
    assert files_on_disk(tables) - on_disk <= files_committed(tables), "the refused files were deleted"


def test_staged_files_of_other_types_than_the_tables_are_not_committed_as_they_are(tables, seeded) -> None:
    """The staged ids are 32-bit, the table's 64-bit: the engine's own write decides (it refuses
    them), and the table is unchanged."""
    before, committed = tables.version(TABLE), files_committed(tables)
    narrow = tables.spark.createDataFrame([(day(4), 7, "narrow")], "d DATE, id INT, note STRING")

    with pytest.raises(Exception, match="Int64"):
        tables.replace_window(TABLE, narrow, window(4, 5))

    assert (tables.version(TABLE), table_rows(tables)) == (before, sorted(seeded))
    assert files_on_disk(tables) == committed


@pytest.mark.parametrize("null_id", [False, True], ids=["no null", "a null"])
def test_a_required_column_is_checked_from_the_staged_files_footers(tables, null_id: bool) -> None:
    """Created from literals, ``id`` is NOT NULL. Staged files whose footers show it has no null
    are committed as they are; a null in it is the engine's to refuse, and nothing lands."""
    name = TableName("silver", "required")
    tables.replace_window(
        name, tables.spark.sql("SELECT DATE'2026-03-01' AS d, 1L AS id"), window(0, 1), partition_by=("d",)
    )
    assert [field.nullable for field in tables.read(name).schema.fields if field.name == "id"] == [False]
    before = tables.version(name)
    rows = tables.spark.createDataFrame([(day(0), 2), (day(0), None if null_id else 3)], "d DATE, id BIGINT")

    if null_id:
        with pytest.raises(Exception, match=r"(?i)null"):
            tables.replace_window(name, rows, window(0, 1))
        assert [r.id for r in tables.read(name).collect()] == [1]
    else:
        tables.replace_window(name, rows, window(0, 1))
        assert sorted(r.id for r in tables.read(name).collect()) == [2, 3]
        assert tables.log.history(tables.uri(name), 1)[0]["operationMetrics"] == {
            "num_added_rows": 2,
            "num_added_files": 1,
        }, "committed as staged"
    assert tables.version(name) == before + (0 if null_id else 1)
