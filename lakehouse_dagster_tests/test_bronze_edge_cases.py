"""Bronze ingestion at its edges: files that used to be ingested wrong, rejected on every run,
or that blocked the table. Expectations are written by hand, never computed by the code under
test."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse_dagster.ingest.autoloader import ingest
from lakehouse_dagster.ingest.ledger import COMMITTED, ledger_table
from lakehouse_dagster.ingest.sources import FileSource
from lakehouse_dagster.lake.adopt import statistics_json
from lakehouse_dagster.lake.delta import ConcurrentWriteError
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster_tests.crash_during_ingest import CRASH_EXIT_CODE
from lakehouse_dagster_tests.landing_files import land
from lakehouse_dagster_tests.test_ingestion import TARGET, bronze_rows, ledger_rows, people, run_ingest
from lakehouse_dagster_tests.units import run_table


def test_rows_map_onto_their_lines_despite_a_lone_cr_and_a_quote_across_lines(tables, landing, log) -> None:
    """pyarrow reads a lone \\r as a line end and a quoted value across two lines as one record:
    their counts compensate, and used to shift every row in between onto the wrong line."""
    land(
        landing / "people", "a.csv", b'id,name,joined\n1,"Ann\nLee",2024-01-01\n2,Bob\rBy,2024-01-02\n3,Cy,\n'
    )

    run_ingest(tables, log)

    rows = {row["_source_row"]: row for row in bronze_rows(tables)}
    assert sorted(rows) == [2, 3, 4, 5]
    assert (rows[2]["id"], rows[2]["name"]) == (None, None), "the open quote spoils its own line"
    assert json.loads(rows[3]["_rescued_data"]) == {"_malformed_row": 'Lee",2024-01-01'}
    assert json.loads(rows[4]["_rescued_data"]) == {"_malformed_row": "2,Bob\rBy,2024-01-02"}
    assert (rows[5]["id"], rows[5]["name"], rows[5]["_rescued_data"]) == (3, "Cy", None)


def test_a_header_longer_than_64_kib_is_read_whole(tables, landing, log) -> None:
    """The header used to be read from the first 64 KiB only: a valid file was rejected on
    every run ("the header changed"), or as "not UTF-8" when the cut split a character."""
    columns = [f"column_é_{i:05d}" for i in range(5_000)]  # about 75 KiB, two bytes per é
    columns[0] = "id"
    land(landing / "people", "wide.csv", ",".join(columns) + "\n" + ",".join(map(str, range(5_000))) + "\n")
    source = FileSource(folder="people", columns=("id",), column_types={"id": "BIGINT"})

    for _ in range(2):
        report = run_ingest(tables, log, source=source)
        assert report.files_rejected == {}

    [row] = bronze_rows(tables)
    assert row["id"] == 0
    assert json.loads(row["_rescued_data"])["column_é_04999"] == "4999", "named like no column: rescued"


def test_a_first_header_with_names_equal_but_for_case_rescues_the_later_one(tables, landing, log) -> None:
    """A source declaring no columns takes the first header's; `ID` after `id` used to become
    a column too, and the Delta write then failed on every run as a "concurrent writer"."""
    land(landing / "things", "a.csv", "id,ID,name\n1,one,Ann\n2,two,Bob\n")
    target = TableName("bronze", "things")

    report = ingest(tables, FileSource(folder="things"), target, log=log)

    assert (report.files_ingested, report.rows_ingested) == (1, 2)
    rows = tables.read(target).orderBy("_source_row").collect()
    assert [c for c in tables.read(target).columns if not c.startswith("_")] == ["id", "name"]
    assert [(r["id"], r["name"], json.loads(r["_rescued_data"])) for r in rows] == [
        ("1", "Ann", {"ID": "one"}),
        ("2", "Bob", {"ID": "two"}),
    ]


def test_a_batch_whose_own_columns_clash_in_case_is_not_called_a_concurrent_write(tables, tmp_path) -> None:
    """Only another writer can make a planned batch clash in case with the table; a staged file
    that clashes by itself is this writer's own error, and says so."""
    staged = tmp_path / "staged"
    staged.mkdir()
    pq.write_table(pa.table({"id": ["1"], "ID": ["one"]}), staged / "data.parquet")

    with pytest.raises(Exception, match="Duplicate field name") as raised:
        tables.append_staged(TableName("bronze", "clash"), str(staged), token="t1")

    assert not isinstance(raised.value, ConcurrentWriteError)


def test_a_timestamp_past_year_9999_in_utc_is_rescued_and_the_batch_lands(tables, landing, log) -> None:
    """9999-12-31T23:30:00-01:00 is year 10000 in UTC: it used to fail every run (the staged
    file's statistics could not be read), holding back the other files too."""
    source = FileSource(folder="ts", columns=("id", "at"), column_types={"id": "BIGINT", "at": "TIMESTAMP"})
    target = TableName("bronze", "ts")
    land(landing / "ts", "good.csv", "id,at\n2,2024-01-01T00:00:00Z\n")
    land(landing / "ts", "far.csv", "id,at\n1,9999-12-31T23:30:00-01:00\n3,9999-12-31T22:30:00-01:00\n")

    report = ingest(tables, source, target, log=log)

    assert (report.files_ingested, report.rows_ingested, report.rows_rescued) == (2, 3, 1)
    rows = {r["id"]: r for r in tables.read(target).collect()}
    assert rows[1]["at"] is None
    assert json.loads(rows[1]["_rescued_data"]) == {"at": "9999-12-31T23:30:00-01:00"}
    assert rows[3]["at"].replace(tzinfo=UTC) == datetime(9999, 12, 31, 23, 30, tzinfo=UTC)


def test_statistics_skip_a_bound_python_cannot_hold() -> None:
    """A safety net behind the typing: a timestamp past 9999 in a staged file costs its column's
    bounds, not the commit."""
    table = pa.table(
        {
            "at": pa.array([253_402_300_800_000_000 + 3_600_000_000], pa.timestamp("us", tz="UTC")),
            "id": pa.array([7], pa.int64()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)

    stats = json.loads(statistics_json(pq.read_metadata(buffer)))

    assert stats["numRecords"] == 1
    assert "at" not in stats["minValues"] and "at" not in stats["maxValues"]
    assert (stats["minValues"]["id"], stats["maxValues"]["id"]) == (7, 7)


def test_a_rejected_file_stays_rejected_when_a_crashed_batch_is_completed(
    tables, layout, landing, sail_url, log
) -> None:
    """A run killed after its bronze commit: the next run records the batch's ledger entries. A
    file without rows there used to be recorded empty, its rejection (and the check) lost."""
    good = people(landing, "good.csv", [[1, "a", "2024-01-01"]])
    binary = land(landing / "people", "binary.csv", b"id,name,joined\n\x00\x01\x02\n")
    header_only = land(landing / "people", "header_only.csv", "id,name,joined\n")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse_dagster_tests.crash_during_ingest",
            sail_url,
            layout.root,
            "after_bronze_write",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == CRASH_EXIT_CODE, completed.stderr[-2000:]

    report = run_ingest(tables, log)

    assert len(report.recovered_batches) == 1
    assert report.files_rejected == {str(binary): "binary content (NUL bytes)"}
    assert report.files_empty == [str(header_only)]
    outcomes = {
        r["file_path"]: (r["outcome"], r["message"]) for r in ledger_rows(tables) if r["event"] == COMMITTED
    }
    assert outcomes[str(good)][0] == "ingested"
    assert outcomes[str(binary)] == ("rejected", "binary content (NUL bytes)")
    assert outcomes[str(header_only)] == ("empty", "header only")
    assert [r["id"] for r in bronze_rows(tables)] == [1]
    assert tables.exists(ledger_table(TARGET))


def test_a_first_file_that_is_rejected_fails_the_check_naming_it(tables, landing) -> None:
    """It used to fail the unit with "no .csv files under ..." on every run, the rejection never
    reaching no_rejected_files."""
    land(landing / "customers", "export.csv", "customer_id,first_name,,email\n1,a,b,c\n")

    result = run_table(tables, "bronze.customers")

    check = next(c for c in result.checks if c.name == "no_rejected_files")
    assert not check.passed
    assert check.metadata["rejected_files"] == {"customers/export.csv": "header column(s) 3 have no name"}
    assert result.metadata["lakehouse/files_rejected"] == 1
    assert tables.read(TableName("bronze", "customers")).count() == 0

    again = run_table(tables, "bronze.customers")
    assert next(c for c in again.checks if c.name == "no_rejected_files").passed, "reported once"


def test_a_staged_write_failing_mid_batch_stops_it_commits_nothing_and_frees_its_files(
    tables, landing, log, monkeypatch
) -> None:
    """The disk fills while a batch's files are staged: the error surfaces, the files not yet
    started are not read, nothing is committed, and the next run ingests every file once."""
    from lakehouse_dagster.lake.files import ParquetPerThread

    files = [people(landing, f"p{i:02d}.csv", [[i, f"n{i}", "2024-01-01"]]) for i in range(40)]
    write_table = ParquetPerThread.write_table
    writes: list[int] = []

    def disk_full_at_the_third(self, table):
        writes.append(table.num_rows)
        if len(writes) == 3:
            raise OSError(28, "No space left on device")
        return write_table(self, table)

    monkeypatch.setattr(ParquetPerThread, "write_table", disk_full_at_the_third)
    with pytest.raises(OSError, match="No space left"):
        run_ingest(tables, log)

    assert len(writes) < len(files), "the files after the failure were not all read"
    assert not tables.exists(TARGET) or tables.read(TARGET).count() == 0
    monkeypatch.setattr(ParquetPerThread, "write_table", write_table)
    assert run_ingest(tables, log).files_ingested == len(files)
    assert sorted(row["id"] for row in bronze_rows(tables)) == list(range(40))
