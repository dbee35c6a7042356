"""The Glue catalog and the Redshift warehouse against a moto server on 127.0.0.1.

moto implements Glue's tables and S3, but not the Redshift Data API's BatchExecuteStatement:
the Redshift tests check the Parquet files staged for COPY and the statements of a load.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse_dagster.catalog.glue import GlueCatalog, hive_type
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.lake.snapshots import DeltaLog
from lakehouse_dagster.serving.redshift import TEXT, RedshiftWarehouse, load_statements, parquet_parts
from lakehouse_dagster.serving.schema import Column, IncompatibleSchemaError, warehouse_columns
from lakehouse_dagster.serving.spec import DateRange, ServedTable

REGION = "us-east-1"
DAILY = TableName("gold", "daily_sales")


@pytest.fixture
def aws(moto_server, monkeypatch) -> str:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    return moto_server.endpoint_url


@pytest.fixture
def glue(aws, request) -> GlueCatalog:
    database = f"lake_{request.node.name.lower()[:40]}"
    client = boto3.client("glue", region_name=REGION, endpoint_url=aws)
    client.create_database(DatabaseInput={"Name": database})
    return GlueCatalog(database=database, region_name=REGION, endpoint_url=aws)


def sales(with_channel: bool = False) -> pa.Table:
    columns = {
        "category": pa.array(["books", "toys"]),
        "revenue": pa.array([Decimal("1.50"), Decimal("2.25")], pa.decimal128(12, 2)),
        "orders": pa.array([3, 4], pa.int64()),
        "order_date": pa.array([date(2026, 11, 1), date(2026, 11, 2)], pa.date32()),
    }
    if with_channel:
        columns["channel"] = pa.array(["web", "shop"])
    return pa.table(columns)


def glue_table(catalog: GlueCatalog, name: str) -> dict:
    return catalog.client().get_table(DatabaseName=catalog.database, Name=name)["Table"]


def versions(catalog: GlueCatalog, name: str) -> int:
    return len(
        catalog.client().get_table_versions(DatabaseName=catalog.database, TableName=name)["TableVersions"]
    )


def test_a_delta_table_is_registered_with_location_columns_partition_keys_and_delta_parameters(
    glue, tmp_path: Path
) -> None:
    uri = str(tmp_path / "gold" / "daily_sales")
    deltalake.write_deltalake(uri, sales(), partition_by=["order_date"])

    metadata = glue.register(DAILY, uri, "Daily sales.", {"revenue": "Revenue in the currency."})

    assert metadata == {
        "lakehouse/glue_table": f"{glue.database}.gold_daily_sales",
        "lakehouse/glue_registration": "created",
    }
    table = glue_table(glue, "gold_daily_sales")
    storage = table["StorageDescriptor"]
    assert storage["Location"] == uri
    assert storage["Columns"] == [
        {"Name": "category", "Type": "string"},
        {"Name": "revenue", "Type": "decimal(12,2)", "Comment": "Revenue in the currency."},
        {"Name": "orders", "Type": "bigint"},
    ]
    assert table["PartitionKeys"] == [{"Name": "order_date", "Type": "date"}]
    assert table["TableType"] == "EXTERNAL_TABLE" and table["Description"] == "Daily sales."
    protocol = deltalake.DeltaTable(uri).protocol()
    assert {
        "table_type": "DELTA",
        "spark.sql.sources.provider": "delta",
        "delta.minReaderVersion": str(protocol.min_reader_version),
        "delta.minWriterVersion": str(protocol.min_writer_version),
        "lakehouse.table": "gold.daily_sales",
    }.items() <= table["Parameters"].items()
    assert storage["SerdeInfo"]["Parameters"]["path"] == uri


def test_registration_is_idempotent_and_follows_schema_changes(glue, tmp_path: Path) -> None:
    uri = str(tmp_path / "gold" / "daily_sales")
    deltalake.write_deltalake(uri, sales(), partition_by=["order_date"])
    glue.register(DAILY, uri)
    deltalake.write_deltalake(uri, sales(), partition_by=["order_date"], mode="append")  # data only

    assert glue.register(DAILY, uri)["lakehouse/glue_registration"] == "unchanged"
    assert versions(glue, "gold_daily_sales") == 1, "an unchanged table gets no new Glue version"

    deltalake.write_deltalake(
        uri, sales(with_channel=True), partition_by=["order_date"], mode="append", schema_mode="merge"
    )
    assert glue.register(DAILY, uri)["lakehouse/glue_registration"] == "updated"
    columns = [c["Name"] for c in glue_table(glue, "gold_daily_sales")["StorageDescriptor"]["Columns"]]
    assert columns == ["category", "revenue", "orders", "channel"]
    assert glue.register(DAILY, uri)["lakehouse/glue_registration"] == "unchanged"


def test_a_delta_property_gone_from_the_log_goes_from_glue(glue, tmp_path: Path, monkeypatch) -> None:
    uri = str(tmp_path / "gold" / "daily_sales")
    deltalake.write_deltalake(uri, sales(), configuration={"delta.enableChangeDataFeed": "true"})
    glue.register(DAILY, uri)
    assert glue_table(glue, "gold_daily_sales")["Parameters"]["delta.enableChangeDataFeed"] == "true"
    # The log after Spark's ALTER TABLE ... UNSET TBLPROPERTIES (deltalake cannot unset one).
    read = DeltaLog.read
    monkeypatch.setattr(DeltaLog, "read", lambda uri: dataclasses.replace(read(uri), configuration=()))

    assert glue.register(DAILY, uri)["lakehouse/glue_registration"] == "updated"
    assert "delta.enableChangeDataFeed" not in glue_table(glue, "gold_daily_sales")["Parameters"]
    assert glue.register(DAILY, uri)["lakehouse/glue_registration"] == "unchanged"


class LowerCaseColumns:
    """A Glue client that answers column names in lower case, as Glue may keep them."""

    def __init__(self, client) -> None:
        self.client, self.exceptions = client, client.exceptions

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def get_table(self, **kwargs) -> dict:
        answer = copy.deepcopy(self.client.get_table(**kwargs))
        table = answer["Table"]
        for column in table["StorageDescriptor"]["Columns"] + table.get("PartitionKeys", []):
            column["Name"] = column["Name"].lower()
        return answer


def test_mixed_case_columns_stay_unchanged_when_glue_lower_cases_them(glue, tmp_path: Path) -> None:
    uri = str(tmp_path / "gold" / "daily_sales")
    deltalake.write_deltalake(
        uri, sales().rename_columns(["Category", "revenue", "orderCount", "order_date"])
    )
    glue._client = LowerCaseColumns(glue.client())

    actions = [glue.register(DAILY, uri)["lakehouse/glue_registration"] for _ in range(3)]

    assert actions == ["created", "unchanged", "unchanged"]
    assert versions(glue, "gold_daily_sales") == 1


def test_only_silver_and_gold_are_registered_and_only_with_a_database(glue, tmp_path: Path) -> None:
    uri = str(tmp_path / "bronze" / "raw")
    deltalake.write_deltalake(uri, sales())
    assert glue.register(TableName("bronze", "raw"), uri) == {}
    assert GlueCatalog().register(TableName("silver", "raw"), uri) == {}
    assert glue.client().get_tables(DatabaseName=glue.database)["TableList"] == []


@pytest.mark.parametrize(
    ("delta", "hive"),
    [
        ("timestamp_ntz", "timestamp"),
        ({"type": "array", "elementType": "long", "containsNull": True}, "array<bigint>"),
        (
            {"type": "map", "keyType": "string", "valueType": {"type": "array", "elementType": "date"}},
            "map<string,array<date>>",
        ),
        (
            {
                "type": "struct",
                "fields": [{"name": "a", "type": "short"}, {"name": "b", "type": "decimal(5,1)"}],
            },
            "struct<a:smallint,b:decimal(5,1)>",
        ),
    ],
)
def test_nested_delta_types_become_hive_types(delta, hive) -> None:
    assert hive_type(delta) == hive


# Redshift ----------------------------------------------------------------------------------------

SERVED = ServedTable(
    "daily_sales", "gold.daily_sales", "Daily sales.", ("order_date", "category"), "order_date"
)


def test_a_load_is_one_transaction_that_stages_replaces_the_range_and_records_itself() -> None:
    wanted = warehouse_columns(sales().schema, text_type=TEXT)
    statements = load_statements(
        SERVED,
        wanted,
        None,
        staged_uri="s3://gold/_serving_staging/daily_sales/abc",
        window=DateRange(date(2026, 11, 1), date(2026, 11, 3)),
        source_version=7,
        run_id="run-1",
    )
    kinds = [" ".join(s.split()[:2]) for s in statements]
    assert kinds == [
        "CREATE TEMPORARY",
        "COPY lakehouse_stage",
        "CREATE TABLE",
        "DELETE FROM",
        "DELETE FROM",
        "INSERT INTO",
        "INSERT INTO",
    ]
    assert (
        "FROM 's3://gold/_serving_staging/daily_sales/abc/' IAM_ROLE default FORMAT AS PARQUET"
        in statements[1]
    )
    assert (
        '"category" character varying(65535)' in statements[2] and '"revenue" numeric(12,2)' in statements[2]
    )
    assert 'PRIMARY KEY ("order_date", "category")' in statements[2]
    assert statements[3].endswith("WHERE table_name = 'daily_sales'"), "a dropped table's earlier loads"
    assert "\"order_date\" >= '2026-11-01' AND \"order_date\" < '2026-11-03'" in statements[4]
    assert "'run-1'" in statements[6] and "7" in statements[6]
    assert not any(s.startswith("LOCK") for s in statements), "Redshift's LOCK makes readers wait"

    existing = [Column(c.name, c.type) for c in wanted if c.name != "category"] + [
        Column("category", "bigint")
    ]
    with pytest.raises(IncompatibleSchemaError, match="column 'category' is bigint in the warehouse"):
        load_statements(
            SERVED, wanted, existing, staged_uri="s3://x/y", window=None, source_version=1, run_id="r"
        )
    added = load_statements(
        SERVED, wanted, wanted[:-1], staged_uri="s3://x/y", window=None, source_version=1, run_id="r"
    )
    assert 'ALTER TABLE "serving"."daily_sales" ADD COLUMN "order_date" date' in added
    assert 'DELETE FROM "serving"."daily_sales"' in added, "an unpartitioned load replaces every row"


def test_rows_are_staged_as_parquet_files_in_s3_and_removed_afterwards(aws) -> None:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    s3.create_bucket(Bucket="gold-staging")
    rows = pa.concat_tables([sales()] * 5)
    warehouse = RedshiftWarehouse(
        workgroup="bi",
        database="lakehouse",
        staging_uri="s3://gold-staging/_serving_staging",
        region_name=REGION,
        endpoint_url=aws,
    )

    keys = warehouse.stage(
        "s3://gold-staging/_serving_staging/daily_sales/load1",
        pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(max_chunksize=2)),
    )

    assert keys == ["_serving_staging/daily_sales/load1/part-00000.parquet"]
    staged = pq.read_table(io.BytesIO(s3.get_object(Bucket="gold-staging", Key=keys[0])["Body"].read()))
    assert staged.equals(rows.combine_chunks())
    warehouse.unstage("s3://gold-staging/_serving_staging/daily_sales/load1")
    assert s3.list_objects_v2(Bucket="gold-staging").get("KeyCount", 0) == 0


def test_large_loads_are_split_into_several_files_and_no_rows_stage_nothing() -> None:
    rows = pa.table({"id": pa.array(range(25), pa.int64())})
    parts = list(
        parquet_parts(
            pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(max_chunksize=5)), rows_per_file=10
        )
    )
    assert [pq.read_table(io.BytesIO(p)).num_rows for p in parts] == [10, 10, 5]
    assert list(parquet_parts(pa.RecordBatchReader.from_batches(rows.schema, []))) == []
