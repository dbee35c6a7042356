"""Table maintenance through the storage seam: compaction, Z-order, VACUUM and row retention.

Expected rows and files are computed from what the tests wrote and from the files on disk,
never from the maintenance unit's own report.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import deltalake
import pyarrow as pa
import pytest

from lakehouse_dagster.declarations.maintenance import (
    DEFAULT_MAINTENANCE,
    MIN_VACUUM_RETENTION_HOURS,
    Maintenance,
    Retention,
)
from lakehouse_dagster.declarations.table import Domain, Registry, Table
from lakehouse_dagster.declarations.timing import DailyPartitions, Freshness, Job
from lakehouse_dagster.lake.delta import SparkSqlLog
from lakehouse_dagster.lake.files import Removed, remove_stale_entries
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.quality.history import DATA_QUALITY
from lakehouse_dagster.quality.history import SCHEMA as HISTORY_SCHEMA
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.units.request import UnitRequest

from .conftest import unique_name
from .units import AS_OF, UnitFailed, run_table

EVENTS = TableName("bronze", "events")
PREFIX = "lakehouse/maintenance"
#: Maintenance as resolved for a table that declares nothing: the registry's default.
DEFAULT = Maintenance().merged_over(DEFAULT_MAINTENANCE)


def untouched(context):
    raise AssertionError("maintenance must not build the table")


def events_table(**maintenance) -> Table:
    return Table(
        EVENTS, "events", build=untouched, maintenance=Maintenance(**maintenance) if maintenance else None
    )


def data_files(uri: str) -> set[str]:
    """Parquet files on disk, wherever they are below the table's folder (the log excluded)."""
    root = Path(uri)
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


def referenced(uri: str, version: int | None = None) -> list[str]:
    table = deltalake.DeltaTable(uri, version=version)
    return [uri_.removeprefix("file://").removeprefix(uri).lstrip("/") for uri_ in table.file_uris()]


def rows_at(spark, uri: str, version: int | None = None) -> list[tuple]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return sorted(tuple(row) for row in reader.load(uri).collect())


# Compaction ------------------------------------------------------------------------------------


def test_compaction_after_200_small_appends_keeps_the_rows_and_time_travel(spark, tables) -> None:
    uri = tables.uri(EVENTS)
    appended: list[list[tuple]] = []
    for batch in range(200):  # a bronze table fed by frequent micro-batches
        rows = [(batch * 5 + i, f"batch-{batch}", float(i)) for i in range(5)]
        frame = pa.table(
            {"id": [r[0] for r in rows], "batch": [r[1] for r in rows], "x": [r[2] for r in rows]}
        )
        deltalake.write_deltalake(uri, frame, mode="append")
        appended.append(rows)
    before = referenced(uri)
    bytes_before = sum(os.path.getsize(os.path.join(uri, path)) for path in before)
    assert len(before) == 200

    result = run_table(tables, events_table(), maintenance=DEFAULT)

    metadata = result.metadata
    after = referenced(uri)
    assert len(after) <= 2, "compaction leaves few files"
    assert (metadata[f"{PREFIX}/files_before"], metadata[f"{PREFIX}/files_after"]) == (200, len(after))
    assert metadata[f"{PREFIX}/bytes_before"] == bytes_before
    assert metadata[f"{PREFIX}/bytes_after"] == sum(os.path.getsize(os.path.join(uri, p)) for p in after)
    assert metadata[f"{PREFIX}/files_rewritten"] == 200
    every_row = sorted(row for rows in appended for row in rows)
    assert rows_at(spark, uri) == every_row
    # VACUUM kept the small files: they were removed less than the retention window ago.
    assert metadata[f"{PREFIX}/files_vacuumed"] == 0
    assert set(before) <= data_files(uri)
    # Time travel inside the window: version 99 is the first 100 appends.
    assert rows_at(spark, uri, 99) == sorted(row for rows in appended[:100] for row in rows)


def test_zorder_clusters_by_the_declared_columns_and_keeps_the_rows(spark, tables) -> None:
    """Z-ordered by one column, rows are sorted by it; plain compaction keeps the order of appends."""
    import pyarrow.parquet as pq

    uri = tables.uri(EVENTS)
    for batch in range(4):
        ids = list(range(batch, 400, 4))  # every file spans every id: interleaved, not sorted
        frame = pa.table({"id": ids, "kind": [f"k{i % 7}" for i in ids]})
        deltalake.write_deltalake(uri, frame, mode="append")
    expected = rows_at(spark, uri)

    run_table(tables, events_table(), maintenance=replace(DEFAULT, zorder_by=("id",)))

    (commit,) = [c for c in deltalake.DeltaTable(uri).history() if c["operation"] == "OPTIMIZE"]
    assert commit["operationMetrics"]["plannerStrategy"] == "zOrder"
    (path,) = referenced(uri)
    ids = pq.read_table(os.path.join(uri, path)).column("id").to_pylist()
    assert ids == sorted(ids) and len(ids) == 400
    assert rows_at(spark, uri) == expected


def test_a_vacuum_a_table_property_refuses_names_the_table_and_the_setting(tables) -> None:
    """Every table's maintenance includes ops.metrics: its own retention property refusing the
    table's VACUUM window names ops.metrics, not only the table being maintained."""
    deltalake.write_deltalake(tables.uri(EVENTS), pa.table({"id": [1]}), mode="append")
    metrics = tables.uri(TableName("ops", "metrics"))
    deltalake.write_deltalake(metrics, pa.table({"metric": ["RowsWritten"]}), mode="append")
    deltalake.DeltaTable(metrics).alter.set_table_properties(
        {"delta.deletedFileRetentionDuration": "interval 30 days"}
    )
    with pytest.raises(
        UnitFailed, match=r"ops.metrics: VACUUM retaining 168 hours \(vacuum_retention_hours of bronze.events"
    ):
        run_table(tables, events_table(), maintenance=DEFAULT)


def test_zorder_by_a_column_the_table_lacks_fails_naming_it(tables) -> None:
    deltalake.write_deltalake(tables.uri(EVENTS), pa.table({"id": [1]}), mode="append")
    with pytest.raises(UnitFailed, match=r"bronze.events: cannot Z-order by 'customer': no such column"):
        run_table(tables, events_table(), maintenance=replace(DEFAULT, zorder_by=("customer",)))


def test_a_table_not_materialised_yet_has_nothing_to_maintain(tables) -> None:
    result = run_table(tables, events_table(), maintenance=DEFAULT)
    assert result.metadata[f"{PREFIX}/skipped"] == "the table does not exist yet"
    assert not tables.exists(EVENTS), "maintenance creates nothing"


# VACUUM ----------------------------------------------------------------------------------------


def backdate_removals(uri: str, version: int, days: int) -> None:
    """Make the files removed by ``version`` look removed ``days`` ago, as if the commit were old
    (VACUUM decides by a removal's deletion timestamp in the log)."""
    path = Path(uri) / "_delta_log" / f"{version:020d}.json"
    old = int((datetime.now(UTC) - timedelta(days=days)).timestamp() * 1000)
    actions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for action in actions:
        if "remove" in action:
            action["remove"]["deletionTimestamp"] = old
    path.write_text("\n".join(json.dumps(action) for action in actions) + "\n")


def test_vacuum_removes_only_files_older_than_the_window(spark, tables) -> None:
    uri = tables.uri(EVENTS)
    deltalake.write_deltalake(uri, pa.table({"id": [1, 2]}), mode="append")  # version 0: files A
    files_a = set(referenced(uri))
    deltalake.write_deltalake(uri, pa.table({"id": [3]}), mode="overwrite")  # version 1: A removed
    files_b = set(referenced(uri))
    deltalake.write_deltalake(uri, pa.table({"id": [4]}), mode="overwrite")  # version 2: B removed
    files_c = set(referenced(uri))
    backdate_removals(uri, version=1, days=10)  # A was removed 10 days ago; B just now
    # Files no commit refers to (a writer that died before its commit): one old, one new.
    stray_old, stray_new = Path(uri) / "part-stray-old.parquet", Path(uri) / "part-stray-new.parquet"
    for stray in (stray_old, stray_new):
        stray.write_bytes(Path(uri, next(iter(files_c))).read_bytes())
    ten_days_ago = time.time() - 10 * 86400
    os.utime(stray_old, (ten_days_ago, ten_days_ago))

    result = run_table(tables, events_table(), maintenance=DEFAULT)

    on_disk = data_files(uri)
    assert not files_a & on_disk, "removed 10 days ago: outside the 7-day window"
    assert files_b <= on_disk and files_c <= on_disk, "inside the window, or current"
    assert stray_old.name not in on_disk and stray_new.name in on_disk
    assert result.metadata[f"{PREFIX}/files_vacuumed"] == len(files_a) + 1
    assert rows_at(spark, uri, 1) == [(3,)], "time travel inside the window still works"
    assert rows_at(spark, uri) == [(4,)]


def leave_staging(tables, name: TableName, folder: str, spark, age_days: float = 0) -> Path:
    """A staging folder as a writer killed mid-batch leaves it: Parquet written by the real
    staging code, every entry's modification time ``age_days`` ago."""
    path = Path(tables.layout.staging_root(name), folder)
    spark.createDataFrame([(1, "a"), (2, "b")], "id BIGINT, v STRING").write.parquet(str(path))
    stamp = time.time() - age_days * 86400
    for entry in [*path.rglob("*"), path]:
        os.utime(entry, (stamp, stamp))
    return path


def test_stale_staging_folders_of_the_table_and_its_companions_are_removed(spark, tables) -> None:
    """Killed writers' scratch folders go once nothing in them changed for the VACUUM window;
    a live writer's folder (young, or old but still being written) and other tables' stay. The
    sweep runs also before the table's first commit (a first build killed before it)."""
    silver = REGISTRY.table("silver.sales_orders")
    quarantine, other = TableName("quarantine", "sales_orders"), TableName("silver", "sales_order_items")
    stale = [
        leave_staging(tables, silver.name, "stage-killed", spark, age_days=8),
        leave_staging(tables, silver.name, "create-killed", spark, age_days=30),
        leave_staging(tables, quarantine, "stage-killed", spark, age_days=8),
    ]
    live = [
        leave_staging(tables, silver.name, "stage-live", spark),
        leave_staging(tables, silver.name, "stage-window", spark, age_days=6),
        leave_staging(tables, other, "stage-killed", spark, age_days=8),
    ]
    still_written = leave_staging(tables, silver.name, "create-long-run", spark, age_days=8)
    (still_written / "part-new.parquet").write_bytes(b"being written")
    stale_bytes = sum(f.stat().st_size for folder in stale for f in folder.rglob("*") if f.is_file())
    assert not tables.exists(silver.name)

    result = run_table(tables, silver, maintenance=replace(DEFAULT, retention=Retention()))

    assert [folder.exists() for folder in stale] == [False] * len(stale)
    assert [folder.exists() for folder in [*live, still_written]] == [True] * (len(live) + 1)
    assert result.metadata[f"{PREFIX}/staging_folders_removed"] == len(stale)
    assert result.metadata[f"{PREFIX}/staging_bytes_removed"] == stale_bytes
    assert result.metadata[f"{PREFIX}/skipped"] == "the table does not exist yet"

    again = run_table(tables, silver, maintenance=DEFAULT)
    assert again.metadata[f"{PREFIX}/staging_folders_removed"] == 0


def test_the_staging_sweep_works_on_s3_prefixes(moto_server, monkeypatch) -> None:
    """On S3 a folder is a prefix without a time of its own: it is as old as its newest object.
    (pyarrow's S3 client finds the moto server through ``AWS_ENDPOINT_URL``.)"""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_REGION", moto_server.region)
    s3, bucket = moto_server.client("s3"), unique_name("lake")
    s3.create_bucket(Bucket=bucket)
    objects = {
        "_staging/silver__t/stage-a/part-0.parquet": b"1234",
        "_staging/silver__t/stage-a/nested/part-1.parquet": b"56",
        "_staging/silver__t/batch 1-x#y/data.parquet": b"789",
        "_staging/silver__u/stage-c/part-0.parquet": b"0",
    }
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    root = f"s3://{bucket}/_staging/silver__t"

    assert remove_stale_entries(root, datetime.now(UTC) - timedelta(hours=1)) == Removed(0, 0)
    removed = remove_stale_entries(root, datetime.now(UTC) + timedelta(hours=1))

    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if not o["Key"].endswith("/")]
    assert left == ["_staging/silver__u/stage-c/part-0.parquet"]
    assert removed == Removed(entries=2, bytes=sum(len(b) for k, b in objects.items() if "silver__t" in k))


def test_vacuum_and_compaction_statements_on_spark_sql() -> None:
    """Databricks and Spark with Delta: OPTIMIZE ... ZORDER BY and VACUUM ... RETAIN, with quoted
    names, and their results read back."""

    from pyspark.sql import Row

    class Result:
        def __init__(self, rows):
            self.rows = rows

        def first(self):
            return self.rows[0] if self.rows else None

        def collect(self):
            return self.rows

    class RecordingSpark:
        def __init__(self) -> None:
            self.statements: list[str] = []
            self.version = 7

        def sql(self, statement: str) -> Result:
            self.statements.append(statement)
            if statement.startswith("OPTIMIZE"):
                return Result([Row(path="p", metrics=Row(numFilesAdded=2, numFilesRemoved=40))])
            if statement.startswith("VACUUM"):
                self.version += 2
                return Result([Row(path="p")])
            if statement.startswith("DESCRIBE DETAIL"):
                return Result([Row(numFiles=2, sizeInBytes=2048)])
            if statement.startswith("DESCRIBE HISTORY"):
                return Result(
                    [
                        Row(
                            version=self.version,
                            operation="VACUUM END",
                            operationMetrics={"numDeletedFiles": "38"},
                        ),
                        Row(version=self.version - 1, operation="VACUUM START", operationMetrics={}),
                    ]
                )
            raise AssertionError(statement)

    spark = RecordingSpark()
    log = SparkSqlLog(spark)  # type: ignore[arg-type]
    uri = "s3://acme-bronze/events"
    assert log.optimize(uri, ("customer`id", "day")) == {"files_added": 2, "files_removed": 40}
    assert log.vacuum(uri, 168) == 38
    assert log.files(uri).files == 2 and log.files(uri).bytes == 2048
    assert "OPTIMIZE delta.`s3://acme-bronze/events` ZORDER BY (`customer``id`, `day`)" in spark.statements
    assert "VACUUM delta.`s3://acme-bronze/events` RETAIN 168 HOURS" in spark.statements
    assert log.optimize(uri, ()) == {"files_added": 2, "files_removed": 40}
    assert spark.statements[-1] == "OPTIMIZE delta.`s3://acme-bronze/events`"


# Retention -------------------------------------------------------------------------------------


def ts(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_retention_expires_old_rows_of_bronze_quarantine_and_history_then_reports(spark, tables) -> None:
    """The run's as-of date anchors retention: rows older than the declared days expire (a
    delete), their files stay until VACUUM's window has passed; everything else stays."""
    anchor = datetime.combine(AS_OF, datetime.min.time(), UTC)
    days = [AS_OF - timedelta(days=n) for n in (1, 6, 8, 29, 31, 89, 91, 400)]
    bronze = replace(
        REGISTRY.table("bronze.sales_orders"),
        maintenance=Maintenance(retention=Retention(raw_rows_days=30, quality_history_days=90)),
    )
    silver = replace(
        REGISTRY.table("silver.sales_orders"), maintenance=Maintenance(retention=Retention(quarantine_days=7))
    )
    quarantine = TableName("quarantine", "sales_orders")
    stamped = [(i, ts(day)) for i, day in enumerate(days)]
    tables.append(bronze.name, spark.createDataFrame(stamped, "order_id BIGINT, _ingested_at TIMESTAMP"))
    tables.append(silver.name, spark.createDataFrame([(1,)], "order_id BIGINT"))
    tables.append(quarantine, spark.createDataFrame(stamped, "order_id BIGINT, _quarantined_at TIMESTAMP"))
    history = [
        (f"run-{i}", asset, None, "e", "warn", 1, 0, ts(day))
        for i, day in enumerate(days)
        for asset in ("bronze.sales_orders", "silver.sales_orders")
    ]
    tables.append(DATA_QUALITY, spark.createDataFrame(history, HISTORY_SCHEMA))
    version_before = tables.version(bronze.name)

    def kept(retention_days: int) -> list[int]:
        return [i for i, day in enumerate(days) if ts(day) >= anchor - timedelta(days=retention_days)]

    raw = run_table(tables, bronze, maintenance=bronze.maintenance.merged_over(DEFAULT_MAINTENANCE)).metadata
    quarantined = run_table(
        tables, silver, maintenance=silver.maintenance.merged_over(DEFAULT_MAINTENANCE)
    ).metadata

    assert sorted(r.order_id for r in tables.read(bronze.name).collect()) == kept(30)
    assert sorted(r.order_id for r in tables.read(quarantine).collect()) == kept(7)
    remaining = [(r.asset, r.run_id) for r in tables.read(DATA_QUALITY).collect()]
    bronze_history = sorted(run for asset, run in remaining if asset == "bronze.sales_orders")
    assert bronze_history == sorted(f"run-{i}" for i in kept(90))
    assert sum(asset == "silver.sales_orders" for asset, _ in remaining) == len(days), "others' history stays"
    assert raw[f"{PREFIX}/rows_expired"] == len(days) - len(kept(30))
    assert raw[f"{PREFIX}/quality_history_rows_expired"] == len(days) - len(kept(90))
    assert raw[f"{PREFIX}/retention_days"] == {"raw_rows": 30, "quarantine": None, "quality_history": 90}
    assert quarantined[f"{PREFIX}/quarantine_rows_expired"] == len(days) - len(kept(7))
    assert quarantined[f"{PREFIX}/rows_expired"] == 0
    # Deleted, not vacuumed yet: time travel inside the window still shows the rows.
    reader = spark.read.format("delta").option("versionAsOf", version_before)
    assert reader.load(tables.uri(bronze.name)).count() == len(days)


def test_by_default_every_row_is_kept(spark, tables) -> None:
    bronze = REGISTRY.table("bronze.sales_orders")
    old = datetime(2020, 1, 1, tzinfo=UTC)
    tables.append(bronze.name, spark.createDataFrame([(1, old)], "order_id BIGINT, _ingested_at TIMESTAMP"))
    (resolved,) = [t for _, t in REGISTRY.resolved() if t.name == bronze.name]
    assert resolved.maintenance.retention.keeps_everything

    result = run_table(tables, bronze, maintenance=resolved.maintenance)

    assert tables.read(bronze.name).count() == 1
    assert result.metadata[f"{PREFIX}/rows_expired"] == 0


def test_rows_expire_by_the_earlier_of_the_as_of_date_and_today(spark, tables) -> None:
    """A fixed as-of date in the future does not expire rows younger than their retention."""
    bronze = REGISTRY.table("bronze.sales_orders")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    tables.append(
        bronze.name, spark.createDataFrame([(1, yesterday)], "order_id BIGINT, _ingested_at TIMESTAMP")
    )
    maintenance = replace(DEFAULT, retention=Retention(raw_rows_days=2))
    run_table(tables, bronze, maintenance=maintenance, as_of_date=date.today() + timedelta(days=365))
    assert tables.read(bronze.name).count() == 1


@pytest.mark.parametrize("days_ahead", [0, 1, 365])
def test_rows_expire_from_midnight_of_the_earlier_of_the_as_of_date_and_today(
    spark, tables, days_ahead
) -> None:
    """Kept one day: a row of yesterday's first minute stays and one of the minute before
    yesterday goes, whatever the hour of the run, for an as-of date of today or later."""
    bronze = REGISTRY.table("bronze.sales_orders")
    today = datetime.now(UTC).date()
    yesterday = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=1)
    stamped = [(1, yesterday + timedelta(minutes=1)), (2, yesterday - timedelta(minutes=1))]
    tables.append(bronze.name, spark.createDataFrame(stamped, "order_id BIGINT, _ingested_at TIMESTAMP"))
    maintenance = replace(DEFAULT, retention=Retention(raw_rows_days=1))

    run_table(tables, bronze, maintenance=maintenance, as_of_date=today + timedelta(days=days_ahead))

    assert [row["order_id"] for row in tables.read(bronze.name).collect()] == [1]


# Declarations ----------------------------------------------------------------------------------


def test_the_registry_applies_the_default_maintenance_and_tables_override_it() -> None:
    own = Maintenance(cron="0 4 * * 1", zorder_by=("id",), retention=Retention(quarantine_days=30))
    tables = (
        Table(TableName("silver", "a"), "a", build=untouched),
        Table(
            TableName("silver", "b"),
            "b",
            build=untouched,
            maintenance=own,
            expectations=(Expectation("positive", "id > 0", Action.DROP),),
        ),
    )
    default = Maintenance(
        cron="0 2 * * 6", vacuum_retention_hours=240, retention=Retention(quality_history_days=365)
    )
    registry = Registry(
        (Domain("d", "d", tables),), Job("j", "j"), Freshness(timedelta(hours=1), timedelta(hours=2)), default
    )
    resolved = {str(t.name): t.maintenance for _, t in registry.resolved()}
    assert resolved["silver.a"] == default
    assert resolved["silver.b"] == Maintenance(
        cron="0 4 * * 1",
        zorder_by=("id",),
        vacuum_retention_hours=240,
        retention=Retention(quarantine_days=30, quality_history_days=365),
    )
    assert DEFAULT_MAINTENANCE.cron == "0 3 * * 0" and DEFAULT_MAINTENANCE.retention.keeps_everything


def silver_x(maintenance: Maintenance, **declaration) -> Table:
    return Table(TableName("silver", "x"), "x", build=untouched, maintenance=maintenance, **declaration)


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: Maintenance(vacuum_retention_hours=24), "at least 168 hours"),
        (lambda: Retention(raw_rows_days=0), "raw_rows_days: expected whole days >= 1"),
        (
            lambda: Retention(quarantine_days=1_000_000),
            "quarantine_days: expected whole days >= 1 and at most 36600",
        ),
        (
            lambda: Maintenance(vacuum_retention_hours=100_000_000),
            r"vacuum_retention_hours=100000000: .* at most 878400",
        ),
        (lambda: Maintenance(zorder_by="id"), "zorder_by must be a tuple"),
        (lambda: Maintenance(cron="weekly"), "cron expression of 5 fields"),
        (
            lambda: silver_x(Maintenance(retention=Retention(raw_rows_days=30))),
            "silver.x: Retention.raw_rows_days applies to bronze tables",
        ),
        (
            lambda: silver_x(Maintenance(retention=Retention(quarantine_days=30))),
            "silver.x: Retention.quarantine_days, but no drop expectation",
        ),
        (
            lambda: silver_x(
                Maintenance(zorder_by=("day",)),
                partitions=DailyPartitions("day", "day", date(2026, 1, 1), Job("days", "d")),
            ),
            "cannot Z-order by 'day', the partition column",
        ),
    ],
)
def test_bad_maintenance_declarations_are_refused_naming_the_table_and_setting(declare, message) -> None:
    with pytest.raises(ValueError, match=message):
        declare()


@pytest.mark.parametrize(
    ("bronze", "message"),
    [
        ("bronze.sales_customers", r"silver.sales_customers.* \(SCD type [12]\)"),
        ("bronze.sales_orders", r"silver.sales_orders \(SCD type 1\) take a late change older than"),
    ],
)
def test_raw_retention_is_refused_where_a_cdc_table_reads_the_bronze_table(bronze: str, message: str) -> None:
    expiring = replace(REGISTRY.table(bronze), maintenance=Maintenance(retention=Retention(raw_rows_days=30)))
    domains = tuple(
        replace(domain, tables=tuple(expiring if t.name == expiring.name else t for t in domain.tables))
        for domain in REGISTRY.domains
    )
    with pytest.raises(ValueError, match=f"{bronze}: raw-row retention would make {message}"):
        replace(REGISTRY, domains=domains)


def test_a_maintenance_request_travels_as_json() -> None:
    maintenance = Maintenance(
        "0 1 * * *", ("a", "b"), 200, Retention(raw_rows_days=3, quarantine_days=4, quality_history_days=5)
    )
    request = UnitRequest("bronze.events", AS_OF, run_id="r", maintenance=maintenance)
    assert UnitRequest.from_json(request.to_json()) == request
    assert MIN_VACUUM_RETENTION_HOURS == 168


def test_rows_written_are_counted_from_the_commits_of_the_unit(spark, tables) -> None:
    """Appends count their rows, a MERGE its inserted, updated and deleted rows, maintenance none."""
    from lakehouse_dagster.lake.delta import Upsert

    name = TableName("silver", "counted")
    tables.append(name, spark.createDataFrame([(1, "a"), (2, "b")], "id BIGINT, v STRING"))
    start = tables.version(name)
    tables.append(name, spark.createDataFrame([(3, "c")], "id BIGINT, v STRING"))
    merged = spark.createDataFrame(
        [(1, "z", False), (4, "d", False), (2, None, True)], "id BIGINT, v STRING, gone BOOLEAN"
    )
    tables.merge(name, merged, Upsert(on=("id",), columns=("id", "v"), delete_flag="gone"))
    tables.optimize(name)
    assert tables.rows_written(name, start) == 1 + 3
    assert tables.rows_written(name, tables.version(name)) == 0
    assert tables.rows_written(name, None) == 2 + 1 + 3


def test_maintenance_of_a_registered_table_through_its_unit_keeps_its_reads(spark, tables) -> None:
    """A table of the registry, maintained with its resolved declaration: its own ops tables too."""
    name = TableName("bronze", "customers")
    table = REGISTRY.table(name)
    for n in range(3):
        tables.append(
            name,
            spark.createDataFrame([(n, datetime.now(UTC))], "customer_id BIGINT, _ingested_at TIMESTAMP"),
        )
    (resolved,) = [t for _, t in REGISTRY.resolved() if t.name == name]
    result = run_table(tables, table, maintenance=resolved.maintenance)
    assert result.metadata[f"{PREFIX}/files_after"] == 1
    assert sorted(r.customer_id for r in tables.read(name).collect()) == [0, 1, 2]
    assert str(name) in result.metadata[f"{PREFIX}/tables"]
