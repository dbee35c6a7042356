"""The Redshift warehouse end to end against a fake Data API (``fake_redshift.py``: a real
PostgreSQL database with Redshift's rules) and moto's S3, compared with the PostgreSQL
warehouse on the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import boto3
import psycopg
import pyarrow as pa
import pytest

from lakehouse_dagster.serving import redshift
from lakehouse_dagster.serving.postgres import PostgresWarehouse
from lakehouse_dagster.serving.redshift import DuplicateKeyError, RedshiftError, RedshiftWarehouse
from lakehouse_dagster.serving.schema import IncompatibleSchemaError
from lakehouse_dagster.serving.spec import DateRange, ServedTable

from .conftest import unique_name
from .fake_redshift import MAX_SQLS, FakeRedshiftData

DAY = date(2026, 11, 1)
WINDOW = DateRange(DAY, DAY + timedelta(days=1))
DAILY = ServedTable("daily_sales", "gold.daily_sales", "", ("order_date", "category"), "order_date")


@pytest.fixture
def bucket(moto_server) -> str:
    name = unique_name("staging")
    moto_server.client("s3").create_bucket(Bucket=name)
    return name


def redshift_warehouse(moto_server, url: str, bucket: str, **fake: object) -> RedshiftWarehouse:
    warehouse = RedshiftWarehouse(
        workgroup="bi",
        database="lakehouse",
        staging_uri=f"s3://{bucket}/_serving_staging",
        region_name=moto_server.region,
        endpoint_url=moto_server.endpoint_url,
        poll_seconds=0.01,
    )
    s3 = boto3.client("s3", region_name=moto_server.region, endpoint_url=moto_server.endpoint_url)
    warehouse._clients.update({"s3": s3, "redshift-data": FakeRedshiftData(url, s3, **fake)})
    return warehouse


def reader(table: pa.Table, rows_per_batch: int = 1_000) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=rows_per_batch))


def sales(**columns: pa.Array) -> pa.Table:
    return pa.table(
        {
            "order_date": pa.array([DAY, DAY], pa.date32()),
            "category": pa.array(["books", "toys"]),
            **columns,
        }
    )


def served(url: str, table: str = "daily_sales") -> list[tuple]:
    with psycopg.connect(url) as connection:
        columns = [
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'serving' "
                "AND table_name = %s AND column_name <> '_loaded_at' ORDER BY ordinal_position",
                (table,),
            )
        ]
        select = ", ".join(f'"{c}"' for c in columns)
        return sorted(connection.execute(f"SELECT {select} FROM serving.{table}").fetchall())


def staged_objects(moto_server, bucket: str) -> list[str]:
    listed = moto_server.client("s3").list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_mixed_case_columns_load_again_as_on_postgresql(moto_server, postgres, bucket) -> None:
    rows = sales(orderCount=pa.array([3, 4], pa.int64()))
    redshift_url, postgres_url = postgres.new(), postgres.new()
    warehouses = {
        "redshift": redshift_warehouse(moto_server, redshift_url, bucket),
        "postgres": PostgresWarehouse(url=postgres_url),
    }
    for name, warehouse in warehouses.items():
        for version in (1, 2):
            result = warehouse.load(
                DAILY, reader(rows), window=WINDOW, source_version=version, run_id=f"r{version}"
            )
            assert result.rows == 2 and result.columns_added == (), name

    assert (
        served(redshift_url)
        == served(postgres_url)
        == sorted(zip(rows["order_date"].to_pylist(), rows["category"].to_pylist(), [3, 4], strict=True))
    )


def test_columns_differing_only_in_case_are_refused_before_anything_is_staged(
    moto_server, warehouse_url, bucket
) -> None:
    warehouse = redshift_warehouse(moto_server, warehouse_url, bucket)
    rows = sales(id=pa.array([1, 2], pa.int64()), ID=pa.array([3, 4], pa.int64()))

    with pytest.raises(
        IncompatibleSchemaError, match=r"'id' and 'ID' of gold\.daily_sales differ only in case"
    ):
        warehouse.load(DAILY, reader(rows), window=WINDOW, source_version=1, run_id="r1")
    assert staged_objects(moto_server, bucket) == []


def test_many_new_columns_are_added_in_batches_redshift_accepts(moto_server, warehouse_url, bucket) -> None:
    warehouse = redshift_warehouse(moto_server, warehouse_url, bucket)
    warehouse.load(DAILY, reader(sales()), window=WINDOW, source_version=1, run_id="r1")
    wide = sales(**{f"metric_{i:02d}": pa.array([i, -i], pa.int64()) for i in range(2 * MAX_SQLS)})

    result = warehouse.load(DAILY, reader(wide), window=WINDOW, source_version=2, run_id="r2")

    assert len(result.columns_added) == 2 * MAX_SQLS
    fake = warehouse._clients["redshift-data"]
    assert max(len(batch) for batch in fake.batches) <= MAX_SQLS
    assert served(warehouse_url) == sorted(tuple(row.values()) for row in wide.to_pylist()), (
        "every column of the lake, each row once"
    )


def test_staged_files_are_deleted_when_the_lake_read_fails_part_way(
    moto_server, warehouse_url, bucket, monkeypatch
) -> None:
    monkeypatch.setattr(redshift, "ROWS_PER_FILE", 2)
    monkeypatch.setattr(redshift.parquet_parts, "__defaults__", (2,))
    warehouse = redshift_warehouse(moto_server, warehouse_url, bucket)
    rows = sales()

    def batches_then_failure() -> Iterator[pa.RecordBatch]:
        for _ in range(3):
            yield from rows.to_batches()
        raise OSError("the object store timed out")

    with pytest.raises(OSError, match="timed out"):
        warehouse.load(
            DAILY,
            pa.RecordBatchReader.from_batches(rows.schema, batches_then_failure()),
            window=WINDOW,
            source_version=1,
            run_id="r1",
        )
    assert staged_objects(moto_server, bucket) == []
    assert warehouse.row_count(DAILY) is None


def test_a_duplicate_key_fails_the_load_and_changes_nothing(moto_server, warehouse_url, bucket) -> None:
    warehouse = redshift_warehouse(moto_server, warehouse_url, bucket)
    first = sales(orders=pa.array([1, 2], pa.int64()))
    warehouse.load(DAILY, reader(first), window=WINDOW, source_version=1, run_id="r1")
    twice = pa.concat_tables([first, first.slice(0, 1)])

    with pytest.raises(DuplicateKeyError, match=r"1 primary keys \(order_date, category\).*'books'"):
        warehouse.load(DAILY, reader(twice, rows_per_batch=1), window=WINDOW, source_version=2, run_id="r2")

    assert served(warehouse_url) == sorted(tuple(row.values()) for row in first.to_pylist())
    assert staged_objects(moto_server, bucket) == []


@pytest.mark.parametrize("time_zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_load_times_are_read_in_any_session_time_zone(moto_server, warehouse_url, bucket, time_zone) -> None:
    warehouse = redshift_warehouse(moto_server, warehouse_url, bucket, time_zone=time_zone)
    before = datetime.now(UTC)

    result = warehouse.load(DAILY, reader(sales()), window=WINDOW, source_version=1, run_id="r1")

    (load,) = warehouse.loads(DAILY)
    assert load.loaded_at == result.loaded_at
    assert before - timedelta(seconds=5) <= load.loaded_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_a_statement_that_does_not_finish_is_cancelled_and_fails_the_load_naming_the_table(
    moto_server, warehouse_url, bucket
) -> None:
    warehouse = redshift_warehouse(moto_server, warehouse_url, bucket)
    fake = warehouse._clients["redshift-data"]
    warehouse.load(DAILY, reader(sales()), window=WINDOW, source_version=1, run_id="r1")
    stuck = warehouse.model_copy(update={"statement_timeout_seconds": 0.2})
    stuck._clients.update(warehouse._clients)
    fake.hang = True

    with pytest.raises(
        RedshiftError, match=r"loading serving\.daily_sales from gold\.daily_sales.*statement_timeout"
    ):
        stuck.load(DAILY, reader(sales()), window=WINDOW, source_version=2, run_id="r2")

    assert fake.cancelled == [list(fake.statements)[-1]]
    assert staged_objects(moto_server, bucket) == []


def test_unstaging_aborts_uploads_left_unfinished(moto_server, warehouse_url, bucket) -> None:
    warehouse = redshift_warehouse(moto_server, warehouse_url, bucket)
    s3 = moto_server.client("s3")
    staged = f"s3://{bucket}/_serving_staging/daily_sales/load1"
    s3.put_object(Bucket=bucket, Key="_serving_staging/daily_sales/load1/part-00000.parquet", Body=b"x")
    s3.create_multipart_upload(Bucket=bucket, Key="_serving_staging/daily_sales/load1/part-00001.parquet")
    s3.create_multipart_upload(Bucket=bucket, Key="_serving_staging/daily_sales/other/part-00000.parquet")

    warehouse.unstage(staged)

    left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [upload["Key"] for upload in left] == ["_serving_staging/daily_sales/other/part-00000.parquet"]
    assert staged_objects(moto_server, bucket) == []
