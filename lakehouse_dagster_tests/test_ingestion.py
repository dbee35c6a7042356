"""Bronze ingestion: Auto Loader semantics over an explicit list of new files."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.ingest import autoloader
from lakehouse_dagster.ingest.autoloader import ingest
from lakehouse_dagster.ingest.columns import DeclaredTypeError, SchemaEvolutionError
from lakehouse_dagster.ingest.discovery import FileOutsideSourceError, MissingFilesError
from lakehouse_dagster.ingest.ledger import EMPTY, INGESTED, REJECTED, ledger_table
from lakehouse_dagster.ingest.sources import METADATA_COLUMNS, FileSource, SchemaEvolutionMode
from lakehouse_dagster.lake.delta import ConcurrentWriteError, DeltaTables, SchemaMergeError
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster_tests.conftest import unique_name
from lakehouse_dagster_tests.landing_files import csv_text, land
from lakehouse_dagster_tests.oracle import landed_records

TARGET = TableName("bronze", "people")
HEADER = ["id", "name", "joined"]
SOURCE = FileSource(folder="people", columns=tuple(HEADER), column_types={"id": "BIGINT", "joined": "DATE"})


def people(landing: Path, name: str, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    return land(landing / "people", name, csv_text(header, rows))


def run_ingest(tables: DeltaTables, log: logging.Logger, source: FileSource = SOURCE, uris=None):
    return ingest(tables, source, TARGET, log=log, uris=uris)


def bronze_rows(tables: DeltaTables) -> list[dict]:
    return [row.asDict() for row in tables.read(TARGET).orderBy("_source_file", "_source_row").collect()]


def ledger_rows(tables: DeltaTables) -> list[dict]:
    return [row.asDict() for row in tables.read(ledger_table(TARGET)).collect()]


def test_each_run_ingests_only_the_files_it_has_not_seen(tables, landing, log) -> None:
    first = [
        people(landing, f"p{i}.csv", [[i * 10 + j, f"n{j}", "2024-01-01"] for j in range(3)])
        for i in range(2)
    ]

    report = run_ingest(tables, log)
    assert (report.files_ingested, report.rows_ingested) == (2, 6)

    version = tables.version(TARGET)
    ledger_version = tables.version(ledger_table(TARGET))
    again = run_ingest(tables, log)
    assert (again.files_ingested, again.rows_ingested, again.batches) == (0, 0, [])
    assert tables.version(TARGET) == version, "a run with no new files must not commit to bronze"
    assert tables.version(ledger_table(TARGET)) == ledger_version

    third = people(landing, "p2.csv", [[99, "late", "2024-02-02"]])
    report = run_ingest(tables, log)
    assert (report.files_ingested, report.rows_ingested) == (1, 1)
    rows = bronze_rows(tables)
    expected = landed_records([*first, third])
    assert len(rows) == len(expected) == 7
    assert sorted(row["id"] for row in rows) == sorted(int(v) for v in expected["id"])


def test_every_row_carries_its_file_line_batch_and_ingestion_time(tables, landing, log) -> None:
    a = people(landing, "a.csv", [[1, "x", "2024-01-01"], [2, "y", "2024-01-02"]])
    first = run_ingest(tables, log)
    b = people(landing, "b.csv", [[3, "z", "2024-01-03"]])
    second = run_ingest(tables, log)

    rows = bronze_rows(tables)
    assert list(tables.read(TARGET).columns[-len(METADATA_COLUMNS) :]) == list(METADATA_COLUMNS)
    assert [(r["_source_file"], r["_source_row"]) for r in rows] == [(str(a), 2), (str(a), 3), (str(b), 2)]
    assert [r["_batch_id"] for r in rows] == [first.batches[0]] * 2 + [second.batches[0]]
    assert rows[0]["_ingested_at"] == rows[1]["_ingested_at"] < rows[2]["_ingested_at"]
    assert all(r["_source_file_modified_at"] is not None for r in rows)


def test_values_that_fail_a_type_hint_are_rescued_as_text(tables, landing, log) -> None:
    people(
        landing,
        "a.csv",
        [[1, "ok", "2024-01-01"], ["abc", "bad id", "2024-01-02"], [3, "bad date", "2024-13-45"]],
    )

    report = run_ingest(tables, log)

    rows = bronze_rows(tables)
    assert [r["id"] for r in rows] == [1, None, 3]
    assert [r["joined"] for r in rows][1:] == [rows[1]["joined"], None]
    assert [json.loads(r["_rescued_data"]) if r["_rescued_data"] else None for r in rows] == [
        None,
        {"id": "abc"},
        {"joined": "2024-13-45"},
    ]
    assert report.rows_rescued == 2


def test_dates_a_lenient_parser_would_read_and_year_zero_are_rescued(tables, landing, log) -> None:
    """``2023-01- 3`` (a space before the day) and year 0 are not dates: rescued as text, and
    the rest of the file goes in (before, the first failed the whole batch)."""
    odd = ["2023-01- 3", "2023- 1-15", "0000-01-01"]
    people(landing, "a.csv", [[1, "ok", "2024-02-29"], *([i + 2, "odd", text] for i, text in enumerate(odd))])

    report = run_ingest(tables, log)

    rows = bronze_rows(tables)
    assert [(r["id"], r["joined"]) for r in rows] == [(1, date(2024, 2, 29)), (2, None), (3, None), (4, None)]
    rescued = [json.loads(r["_rescued_data"]) for r in rows[1:]]
    assert rescued == [{"joined": text} for text in odd]
    assert (report.rows_ingested, report.rows_rescued) == (4, 3)


def test_malformed_lines_are_kept_with_their_raw_text(tables, landing, log) -> None:
    path = land(
        landing / "people",
        "a.csv",
        'id,name,joined\n1,a,2024-01-01\n2,"broken,2024-01-01\n3,c\n4,d,2024-01-04\n',
    )

    report = run_ingest(tables, log)

    rows = bronze_rows(tables)
    expected = landed_records([path])
    assert len(rows) == len(expected) == 4, "no line may be dropped"
    malformed = [json.loads(r["_rescued_data"])["_malformed_row"] for r in rows if r["_rescued_data"]]
    assert malformed == list(expected.loc[expected["_malformed"], "_raw"])
    assert [r["id"] for r in rows] == [1, None, None, 4]
    assert report.rows_rescued == 2


def test_add_new_columns_evolves_the_table_schema(tables, landing, log) -> None:
    people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    run_ingest(tables, log)
    people(landing, "b.csv", [[2, "b", "2024-01-02", "gold"]], header=[*HEADER, "tier"])

    report = run_ingest(tables, log)

    assert report.new_columns == ["tier"]
    assert [(r["id"], r["tier"]) for r in bronze_rows(tables)] == [(1, None), (2, "gold")]


def test_a_column_declared_after_the_table_exists_is_reported_new_by_the_batch_that_adds_it(
    tables, landing, log
) -> None:
    people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    run_ingest(tables, log)
    declared = replace(
        SOURCE, columns=(*HEADER, "phone"), column_types={**SOURCE.column_types, "phone": "BIGINT"}
    )

    assert run_ingest(tables, log, declared).new_columns == [], "no batch, no column added"
    people(landing, "b.csv", [[2, "b", "2024-01-02", "55"]], header=[*HEADER, "phone"])
    report = run_ingest(tables, log, declared)

    assert report.new_columns == ["phone"]
    assert [(r["id"], r["phone"]) for r in bronze_rows(tables)] == [(1, None), (2, 55)]


@pytest.mark.parametrize("files_per_batch", [1, 10])
def test_a_batch_adds_only_the_new_columns_of_the_files_it_ingests(
    tables, landing, log, monkeypatch, files_per_batch: int
) -> None:
    """The header of ``b.csv`` is read while its upload is unfinished (``tie``), then the file
    is complete (``tier``): it is rejected, and neither name becomes a column, whether ``a.csv``
    is in its batch (its staged rows are rewritten without ``tie``) or in a batch of its own
    (which adds its own new columns only). The retry adds ``tier``."""
    people(landing, "a.csv", [[1, "a", "2024-01-01", "x"]], header=[*HEADER, "city"])
    growing = people(landing, "b.csv", [], header=[*HEADER, "tie"])
    read_headers = autoloader.read_headers

    def upload_ends_after_the_header_was_read(landed, aws=None):
        headers = read_headers(landed, aws)
        growing.write_text(csv_text([*HEADER, "tier"], [[2, "b", "2024-01-02", "gold"]]))
        return headers

    monkeypatch.setattr(autoloader, "read_headers", upload_ends_after_the_header_was_read)
    first = run_ingest(tables, log, replace(SOURCE, max_files_per_batch=files_per_batch))
    monkeypatch.setattr(autoloader, "read_headers", read_headers)
    assert (first.new_columns, list(first.files_rejected)) == (["city"], [str(growing)])
    assert [c for c in tables.read(TARGET).columns if c not in METADATA_COLUMNS] == [*HEADER, "city"]

    second = run_ingest(tables, log)
    assert (second.new_columns, second.files_ingested) == (["tier"], 1)
    assert [(r["id"], r["city"], r["tier"]) for r in bronze_rows(tables)] == [
        (1, "x", None),
        (2, None, "gold"),
    ]


def test_a_column_another_writer_adds_in_another_case_meanwhile_is_a_concurrent_write(
    tables, landing, log, monkeypatch
) -> None:
    """The batch planned ``tier`` as new; before it commits, another writer adds ``Tier``: the
    batch fails as a concurrent write (which the unit runs again), and its rerun rescues ``tier``."""
    people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    run_ingest(tables, log)
    people(landing, "b.csv", [[2, "b", "2024-01-02", "gold"]], header=[*HEADER, "tier"])
    plan_columns = autoloader.plan_columns

    def another_writer_adds_tier_in_capitals_once_planned(*args):
        plan = plan_columns(*args)
        monkeypatch.setattr(autoloader, "plan_columns", plan_columns)
        capitals = people(landing, "c.csv", [[3, "c", "2024-01-03", "x"]], header=[*HEADER, "Tier"])
        run_ingest(tables, log, uris=[str(capitals)])
        return plan

    monkeypatch.setattr(autoloader, "plan_columns", another_writer_adds_tier_in_capitals_once_planned)
    with pytest.raises(
        ConcurrentWriteError, match="differs from one of this batch's new columns only in case"
    ):
        run_ingest(tables, log)

    assert run_ingest(tables, log).files_ingested == 1
    rows = {r["id"]: (r["Tier"], r["_rescued_data"]) for r in bronze_rows(tables)}
    assert rows[1] == (None, None) and rows[3] == ("x", None) and rows[2][0] is None
    assert json.loads(rows[2][1]) == {"tier": "gold"}


def test_rescue_mode_keeps_new_columns_in_rescued_data(tables, landing, log) -> None:
    people(landing, "a.csv", [[1, "a", "2024-01-01", "gold"]], header=[*HEADER, "tier"])
    source = replace(SOURCE, schema_evolution=SchemaEvolutionMode.RESCUE)

    run_ingest(tables, log, source)

    assert "tier" not in tables.read(TARGET).columns
    assert json.loads(bronze_rows(tables)[0]["_rescued_data"]) == {"tier": "gold"}


def test_fail_on_new_columns_names_file_and_column_and_writes_nothing(tables, landing, log) -> None:
    people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    run_ingest(tables, log)
    versions = (tables.version(TARGET), tables.version(ledger_table(TARGET)))
    people(landing, "b.csv", [[2, "b", "2024-01-02"]])
    bad = people(landing, "c.csv", [[3, "c", "2024-01-03", "gold"]], header=[*HEADER, "tier"])
    strict = replace(SOURCE, schema_evolution=SchemaEvolutionMode.FAIL_ON_NEW_COLUMNS)

    with pytest.raises(SchemaEvolutionError, match=rf"{TARGET}: file {bad}.* new column\(s\) tier"):
        run_ingest(tables, log, strict)

    assert (tables.version(TARGET), tables.version(ledger_table(TARGET))) == versions
    assert run_ingest(tables, log).files_ingested == 2, "nothing was recorded, so both files are still new"


def test_a_column_differing_only_in_case_is_rescued(tables, landing, log) -> None:
    people(landing, "a.csv", [[1, "a", "2024-01-01"]], header=["id", "Name", "joined"])

    run_ingest(tables, log)

    row = bronze_rows(tables)[0]
    assert row["name"] is None
    assert json.loads(row["_rescued_data"]) == {"Name": "a"}


def test_empty_and_unparseable_files_are_recorded_and_the_rest_ingested(tables, landing, log, caplog) -> None:
    good = people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    empty = land(landing / "people", "b.csv", b"")
    header_only = land(landing / "people", "c.csv", "id,name,joined\n")
    binary = land(landing / "people", "d.csv", b"\x00\x01PK\x03\x04")

    with caplog.at_level(logging.WARNING):
        report = run_ingest(tables, log)

    assert report.files_ingested == 1
    assert sorted(report.files_empty) == sorted([str(empty), str(header_only)])
    assert list(report.files_rejected) == [str(binary)]
    assert "binary" in report.files_rejected[str(binary)]
    assert f"rejected {binary}" in caplog.text
    outcomes = {r["file_path"]: r["outcome"] for r in ledger_rows(tables) if r["event"] == "committed"}
    assert outcomes == {
        str(good): INGESTED,
        str(empty): EMPTY,
        str(header_only): EMPTY,
        str(binary): REJECTED,
    }
    assert run_ingest(tables, log).files_rejected == {}, "a rejected file is not retried until it changes"


def test_a_file_of_nothing_but_whitespace_is_empty_and_one_with_a_blank_first_line_rejected(
    tables, landing, log
) -> None:
    blank = {
        name: land(landing / "people", name, content)
        for name, content in {
            "newline.csv": b"\n",
            "bom.csv": "\ufeff".encode(),
            "crlf.csv": b"\r\n\r\n",
            "spaces.csv": b"  \n\t\n ",
        }.items()
    }
    late_header = land(landing / "people", "late.csv", "\nid,name,joined\n1,x,2024-01-01\n")

    report = run_ingest(tables, log)

    assert sorted(report.files_empty) == sorted(str(path) for path in blank.values())
    assert report.files_rejected == {str(late_header): "the header row is empty"}, "its rows are not empty"
    assert report.files_ingested == 0


def test_a_rejected_file_is_retried_once_replaced(tables, landing, log) -> None:
    land(landing / "people", "a.csv", b"\xff\xfe garbage")
    assert len(run_ingest(tables, log).files_rejected) == 1
    people(landing, "a.csv", [[1, "fixed", "2024-01-01"]])

    report = run_ingest(tables, log)

    assert (report.files_ingested, report.rows_ingested) == (1, 1)


def test_an_s3_object_gone_before_it_was_read_is_ingested_once_put_back_with_the_same_bytes(
    spark, tmp_path, moto_server, log, monkeypatch
) -> None:
    """Nothing of it was read, so its rejection is not for its content: an S3 object put back
    with the same bytes (the same ETag) is tried again, not taken for the file rejected."""
    bucket = unique_name("landing")
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    env = {"LAKEHOUSE_ROOT": str(tmp_path / "lake"), "LAKEHOUSE_LANDING": f"s3://{bucket}/landing"}
    tables = DeltaTables(spark, LakehouseSettings.from_env({**env, **moto_server.env()}).layout)
    content = {"a.csv": [[1, "Ann", "2024-01-01"]], "b.csv": [[2, "Bo", "2024-01-02"]]}
    for name, rows in content.items():
        s3.put_object(Bucket=bucket, Key=f"landing/people/{name}", Body=csv_text(HEADER, rows).encode())
    read_headers = autoloader.read_headers

    def deleted_after_the_listing(landed, aws=None):
        s3.delete_object(Bucket=bucket, Key="landing/people/a.csv")
        return read_headers(landed, aws)

    monkeypatch.setattr(autoloader, "read_headers", deleted_after_the_listing)
    assert list(run_ingest(tables, log).files_rejected) == [f"s3://{bucket}/landing/people/a.csv"]
    monkeypatch.setattr(autoloader, "read_headers", read_headers)
    s3.put_object(Bucket=bucket, Key="landing/people/a.csv", Body=csv_text(HEADER, content["a.csv"]).encode())

    assert run_ingest(tables, log).files_ingested == 1
    assert run_ingest(tables, log).files_ingested == 0, "ingested once"
    expected = sorted(row[0] for rows in content.values() for row in rows)
    assert sorted(row["id"] for row in bronze_rows(tables)) == expected


def test_an_ingested_file_that_changes_is_reported_not_read_twice(tables, landing, log) -> None:
    path = people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    run_ingest(tables, log)
    people(landing, "a.csv", [[1, "a", "2024-01-01"], [2, "b", "2024-01-02"]])

    report = run_ingest(tables, log)

    assert report.files_changed_ignored == [str(path)]
    assert len(bronze_rows(tables)) == 1


def test_batches_are_bounded_and_each_row_lands_once(tables, landing, log) -> None:
    paths = [people(landing, f"p{i}.csv", [[i, "x", "2024-01-01"]]) for i in range(7)]
    source = replace(SOURCE, max_files_per_batch=3)

    report = run_ingest(tables, log, source)

    assert len(report.batches) == 3
    assert sorted(r["id"] for r in bronze_rows(tables)) == list(range(len(paths)))


def test_a_table_with_a_non_nullable_column_refuses_new_columns_instead_of_dropping_them(
    tables, spark
) -> None:
    tables.append(TARGET, spark.range(1).select(F.lit("x").alias("id")))
    versions = tables.version(TARGET)

    with pytest.raises(SchemaMergeError, match=r"cannot add column\(s\) tier .* non-nullable column\(s\) id"):
        tables.append(
            TARGET, spark.createDataFrame([("y", "gold")], "id STRING, tier STRING"), merge_schema=True
        )

    assert tables.version(TARGET) == versions


def test_a_backlog_of_thousands_of_files_is_one_batch(tables, landing, log) -> None:
    files = 2_000
    for i in range(files):
        people(landing, f"part-{i:05d}.csv", [[i * 3 + j, f"n{j}", "2024-01-01"] for j in range(3)])

    report = run_ingest(tables, log)

    assert (report.files_ingested, len(report.batches), report.rows_ingested) == (files, 1, files * 3)
    stats = tables.read(TARGET).agg(F.count_distinct("_source_file"), F.count_distinct("id")).first()
    assert tuple(stats) == (files, files * 3)


# Hostile names, hidden paths, replaced files, and named files ---------------------------------------


def test_file_and_folder_names_with_quotes_and_other_characters_are_ingested_as_they_are(
    tables, landing, log
) -> None:
    hostile = [
        people(landing, 'it\'s a "quoted" `tick` file.csv', [[1, "a", "2024-01-01"]]),
        land(
            landing / "people" / "sub folder #1 %20",
            "o'brien; DROP TABLE x.csv",
            csv_text(HEADER, [[2, "b", None]]),
        ),
    ]

    report = run_ingest(tables, log)

    assert report.files_ingested == 2
    assert {r["_source_file"]: r["id"] for r in bronze_rows(tables)} == {
        str(hostile[0]): 1,
        str(hostile[1]): 2,
    }
    assert run_ingest(tables, log).files_ingested == 0, "and they are known the next time"


@pytest.mark.parametrize(
    "column",
    [
        "_rescued_data",
        "_source_row",
        "_batch_id",
        "_malformed_row",
        "na`me",
        "a.b",
        "with space",
        "x'y",
        "Id",
    ],
)
def test_a_header_column_that_cannot_be_a_column_is_rescued_and_the_other_files_go_in(
    tables, landing, log, column
) -> None:
    hostile = people(landing, "a.csv", [[1, "a", "2024-01-01", "v"]], header=[*HEADER, column])
    plain = people(landing, "b.csv", [[2, "b", "2024-01-02"]])

    report = run_ingest(tables, log)

    assert (report.files_ingested, report.files_rejected) == (2, {})
    rows = {r["_source_file"]: r for r in bronze_rows(tables)}
    assert json.loads(rows[str(hostile)]["_rescued_data"]) == {column: "v"}
    assert rows[str(plain)]["_rescued_data"] is None
    assert rows[str(hostile)]["_source_row"] == 2, "the metadata column keeps its own value"
    assert rows[str(hostile)]["id"] == 1


def test_files_under_hidden_folders_are_not_ingested(tables, landing, log) -> None:
    visible = people(landing, "done.csv", [[1, "a", "2024-01-01"]])
    for hidden in ("_temporary/0/part-0.csv", ".staging/part-1.csv", "_SUCCESS.csv", "day=1/.part-2.csv"):
        folder, _, name = hidden.rpartition("/")
        land(landing / "people" / folder, name, csv_text(HEADER, [[9, "tmp", "2024-01-01"]]))

    report = run_ingest(tables, log)

    assert report.files_ingested == 1
    assert [r["_source_file"] for r in bronze_rows(tables)] == [str(visible)]


def test_a_file_replaced_with_the_same_size_and_time_is_reported_as_changed(tables, landing, log) -> None:
    path = people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    run_ingest(tables, log)
    stat = path.stat()
    path.write_text(csv_text(HEADER, [[7, "b", "2024-01-01"]]))  # same length
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns

    report = run_ingest(tables, log)

    assert report.files_changed_ignored == [str(path)]
    assert [r["id"] for r in bronze_rows(tables)] == [1], "not read twice"


def test_a_touched_file_with_the_same_bytes_is_not_reported(tables, landing, log) -> None:
    path = people(landing, "a.csv", [[1, "a", "2024-01-01"]])
    run_ingest(tables, log)
    path.write_bytes(path.read_bytes())  # rewritten, same content

    assert run_ingest(tables, log).files_changed_ignored == []


def test_exactly_the_named_files_are_ingested(tables, landing, log) -> None:
    named = [people(landing, f"p{i}.csv", [[i, "x", "2024-01-01"]]) for i in range(3)]
    people(landing, "not-named.csv", [[99, "y", "2024-01-01"]])

    report = run_ingest(tables, log, uris=[str(named[0]), str(named[2])])

    assert report.files_ingested == 2
    assert sorted(r["id"] for r in bronze_rows(tables)) == [0, 2]
    assert run_ingest(tables, log, uris=[str(named[0])]).files_ingested == 0, "once, even when named again"


@pytest.mark.parametrize(
    ("hints", "column", "declared", "stored"),
    [
        ({**SOURCE.column_types, "name": "BIGINT"}, "name", "BIGINT", "string"),
        ({"joined": "DATE"}, "id", "STRING", "bigint"),
        ({**SOURCE.column_types, "joined": "TIMESTAMP"}, "joined", "TIMESTAMP", "date"),
    ],
    ids=["a hint added", "a hint removed", "a hint changed"],
)
def test_a_declared_type_that_is_not_the_tables_fails_naming_the_column_and_ingests_nothing(
    tables, landing, log, hints, column, declared, stored
) -> None:
    people(landing, "a.csv", [[1, "007", "2024-01-01"]])
    run_ingest(tables, log)
    before = bronze_rows(tables)
    people(landing, "b.csv", [[2, "008", "2024-01-02"]])

    with pytest.raises(
        DeclaredTypeError, match=rf"{TARGET}: column {column} is declared {declared} .* as {stored}"
    ):
        run_ingest(tables, log, replace(SOURCE, column_types=hints))

    assert bronze_rows(tables) == before
    respelled = replace(SOURCE, column_types={"id": "LONG", "joined": "date"})
    assert run_ingest(tables, log, respelled).files_ingested == 1, (
        "another name of the same type is the same type"
    )
    assert [(row["id"], row["name"]) for row in bronze_rows(tables)] == [(1, "007"), (2, "008")]


def test_a_file_named_by_another_spelling_of_its_path_is_refused_not_ingested_again(
    tables, landing, log
) -> None:
    listed = people(landing, "a.csv", [[1, "x", "2024-01-01"]])
    assert run_ingest(tables, log).files_ingested == 1
    folder, name = str(listed.parent), listed.name
    for spelling in (f"{folder}//{name}", f"{folder}/{name}/", f"{folder}/../people/{name}"):
        with pytest.raises(FileOutsideSourceError, match=re.escape(spelling)):
            run_ingest(tables, log, uris=[spelling])
        with pytest.raises(FileOutsideSourceError, match=re.escape(spelling)):
            run_ingest(tables, log, uris=[str(listed), spelling])

    assert [row["id"] for row in bronze_rows(tables)] == [1]
    assert run_ingest(tables, log, uris=[str(listed)]).files_ingested == 0


def test_named_files_that_are_missing_are_skipped_and_reported_when_asked(tables, landing, log) -> None:
    good = people(landing, "a.csv", [[1, "x", "2024-01-01"]])
    missing = landing / "people" / "gone.csv"

    report = ingest(tables, SOURCE, TARGET, log=log, uris=[str(good), str(missing)], skip_missing=True)

    assert (report.files_ingested, report.files_missing) == (1, [str(missing)])
    assert [row["id"] for row in bronze_rows(tables)] == [1]


def test_named_files_that_are_missing_or_elsewhere_fail_naming_them_and_ingest_nothing(
    tables, landing, log, tmp_path
) -> None:
    good = people(landing, "a.csv", [[1, "x", "2024-01-01"]])
    missing = landing / "people" / "gone.csv"
    elsewhere = land(tmp_path / "other", "b.csv", csv_text(HEADER, [[2, "y", "2024-01-01"]]))
    hidden = land(landing / "people" / "_temporary", "c.csv", csv_text(HEADER, [[3, "z", "2024-01-01"]]))

    with pytest.raises(MissingFilesError, match=re.escape(str(missing))):
        run_ingest(tables, log, uris=[str(good), str(missing)])
    for outside in (elsewhere, hidden):
        with pytest.raises(FileOutsideSourceError, match=re.escape(str(outside))):
            run_ingest(tables, log, uris=[str(good), str(outside)])

    assert not tables.exists(TARGET)
