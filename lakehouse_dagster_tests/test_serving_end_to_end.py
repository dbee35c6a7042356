"""Both domains through Dagster into a real PostgreSQL warehouse, with Glue on a moto server.

The served tables are compared with gold column by column, gold read independently with
deltalake; the serving checks, the Glue registrations and the freshness check are verified
against what the lake and the Dagster instance say.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import boto3
import dagster as dg
import deltalake
import psycopg
import pyarrow as pa
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.partitions import range_tags
from lakehouse_dagster.defs.serving import FRESHNESS_CHECK, RECONCILE_CHECK
from lakehouse_dagster.deployment import Deployment, LakehouseSettings, WarehouseSettings
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster.serving.spec import LOADED_AT

AS_OF = date(2026, 11, 26)
RUN_CONFIG = {
    "ops": {
        "silver__customers": {"config": {"as_of_date": AS_OF.isoformat()}},
        "gold__customer_360": {"config": {"as_of_date": AS_OF.isoformat()}},
    }
}
GLUE_DATABASE = "lake"
SERVED = [table for table in REGISTRY.tables if table.serving is not None]


class Pipeline:
    def __init__(self, settings: LakehouseSettings, layout: LakeLayout) -> None:
        self.settings = settings
        self.layout = layout
        self.defs = build_definitions(settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.results: list[dg.ExecuteInProcessResult] = []

    def run(self, job: str, **kwargs) -> dg.ExecuteInProcessResult:
        result = self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, **kwargs)
        assert result.success
        self.results.append(result)
        return result

    def warehouse(self, sql: str, parameters=()) -> list[tuple]:
        with psycopg.connect(self.settings.warehouse.url) as connection:
            return connection.execute(sql, parameters).fetchall()


def lake_rows(uri: str) -> pa.Table:
    """Gold as deltalake reads it, apart from the loader's own reads (no filter, no cast)."""
    table = deltalake.DeltaTable(uri)
    return pa.table(deltalake.QueryBuilder().register("t", table).execute("SELECT * FROM t").read_all())


@pytest.fixture(scope="module")
def pipeline(sail_url, tmp_path_factory, postgres, moto_server) -> Pipeline:
    layout = LakeLayout.local(str(tmp_path_factory.mktemp("serving") / "lake"))
    landing = Path(layout.landing)
    generate_customers(landing, rows=300, files=2, seed=3)
    simulation = simulate_retail(days=4, seed=3, customers=80, products=20, orders_per_day=20)
    write_landing(simulation, landing)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ENDPOINT_URL": moto_server,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            patch.setenv(name, value)
        boto3.client("glue", region_name="us-east-1").create_database(DatabaseInput={"Name": GLUE_DATABASE})
        settings = LakehouseSettings(
            Deployment.TEST,
            layout,
            EngineSettings(remote_url=sail_url),
            warehouse=WarehouseSettings(url=postgres.new(), glue_database=GLUE_DATABASE, region="us-east-1"),
        )
        lake = Pipeline(settings, layout)
        lake.run("lakehouse_job", run_config=RUN_CONFIG)
        days = sorted({ts[:10] for ts in simulation.truth.tables["orders"]["order_ts"]})
        lake.days = [date.fromisoformat(day) for day in days]
        lake.run("sales_facts_job", tags=range_tags(lake.days[0], lake.days[-1]))
        lake.glue = {
            table["Name"]: table
            for table in boto3.client("glue", region_name="us-east-1").get_tables(DatabaseName=GLUE_DATABASE)[
                "TableList"
            ]
        }
        yield lake


def test_every_served_table_equals_gold_column_by_column(pipeline: Pipeline) -> None:
    assert {t.name.table for t in SERVED} == {
        "customer_segments",
        "daily_sales",
        "customer_360",
        "product_performance",
    }
    for table in SERVED:
        gold = lake_rows(pipeline.layout.table_uri(table.name))
        assert gold.num_rows > 0, table.name
        key = list(table.primary_key)
        expected = sorted(gold.to_pylist(), key=lambda row: tuple(row[c] for c in key))
        columns = gold.column_names
        quoted = ", ".join(f'"{c}"' for c in columns)
        order = ", ".join(f'"{c}"' for c in key)
        loaded = pipeline.warehouse(f"SELECT {quoted} FROM serving.{table.name.table} ORDER BY {order}")
        assert len(loaded) == len(expected), table.name
        for index, column in enumerate(columns):
            assert [row[index] for row in loaded] == [row[column] for row in expected], (table.name, column)


def test_the_warehouse_keeps_the_types_of_gold(pipeline: Pipeline) -> None:
    types = dict(
        pipeline.warehouse(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'serving' AND table_name = 'daily_sales'"
        )
    )
    gold = lake_rows(pipeline.layout.table_uri(TableName("gold", "daily_sales"))).schema
    assert types["order_date"] == "date" and types[LOADED_AT] == "timestamp with time zone"
    for field in gold:
        if pa.types.is_decimal(field.type):
            assert types[field.name] == "numeric", field.name  # money stays exact
        if pa.types.is_floating(field.type):
            assert types[field.name] == "double precision", field.name


def test_the_serving_checks_pass_and_count_every_day(pipeline: Pipeline) -> None:
    evaluations = [
        event.event_specific_data
        for result in pipeline.results
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
        and event.event_specific_data.asset_check_key.asset_key.path[0] == "serving"
    ]
    seen = {(e.asset_check_key.asset_key.path[1], e.asset_check_key.name) for e in evaluations}
    for table in SERVED:
        assert (table.name.table, RECONCILE_CHECK) in seen and (table.name.table, FRESHNESS_CHECK) in seen
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]
    daily = next(
        e
        for e in evaluations
        if e.asset_check_key == dg.AssetCheckKey(dg.AssetKey(["serving", "daily_sales"]), RECONCILE_CHECK)
    )
    assert daily.metadata["days_compared"].value == len(pipeline.days)


def test_a_range_backfill_is_one_load_and_a_reload_changes_no_row(pipeline: Pipeline) -> None:
    query = (
        "SELECT order_date, category, currency, orders, units, revenue, average_order_value, "
        f"cancelled_share, {LOADED_AT} FROM serving.daily_sales ORDER BY order_date, category, currency"
    )
    before = pipeline.warehouse(query)
    loads = pipeline.warehouse("SELECT count(*) FROM serving._loads WHERE table_name = 'daily_sales'")[0][0]
    assert loads == 1, "the first backfill of every day was one load"

    pipeline.run("sales_facts_job", tags=range_tags(pipeline.days[1], pipeline.days[2]))

    after = pipeline.warehouse(query)
    assert [row[:-1] for row in after] == [row[:-1] for row in before], "a reload changes no row"
    window = pipeline.warehouse(
        "SELECT window_start, window_end FROM serving._loads WHERE table_name = 'daily_sales' "
        "ORDER BY loaded_at DESC LIMIT 1"
    )[0]
    assert window == (pipeline.days[1], pipeline.days[3])
    reloaded = {row[-1] for row in after if pipeline.days[1] <= row[0] <= pipeline.days[2]}
    untouched = {row[-1] for row in after if row[0] in (pipeline.days[0], pipeline.days[3])}
    assert len(reloaded) == 1 and untouched == {before[0][-1]} and reloaded != untouched


def test_silver_and_gold_are_registered_in_glue_as_delta_tables(pipeline: Pipeline) -> None:
    expected = {
        f"{t.name.layer}_{t.name.table}" for t in REGISTRY.tables if t.name.layer in ("silver", "gold")
    }
    assert set(pipeline.glue) == expected
    daily = pipeline.glue["gold_daily_sales"]
    uri = pipeline.layout.table_uri(TableName("gold", "daily_sales"))
    assert daily["StorageDescriptor"]["Location"] == uri
    assert daily["Parameters"]["table_type"] == "DELTA"
    assert [k["Name"] for k in daily["PartitionKeys"]] == ["order_date"]
    log = deltalake.DeltaTable(uri).schema()
    names = [field.name for field in log.fields if field.name != "order_date"]
    assert [c["Name"] for c in daily["StorageDescriptor"]["Columns"]] == names


def test_the_freshness_check_fails_when_gold_is_rebuilt_without_serving_it(pipeline: Pipeline) -> None:
    segments = [dg.AssetKey(["bronze", "customers"]), dg.AssetKey(["silver", "customers"])]
    gold = dg.AssetKey(["gold", "customer_segments"])
    pipeline.run("lakehouse_job", run_config=RUN_CONFIG, asset_selection=[*segments, gold])
    check = pipeline.defs.get_asset_checks_def(
        dg.AssetCheckKey(dg.AssetKey(["serving", "customer_segments"]), FRESHNESS_CHECK)
    )
    warehouse = pipeline.defs.resources["warehouse"]

    stale = check(
        dg.build_asset_check_context(instance=pipeline.instance, resources={"warehouse": warehouse})
    )
    assert not stale.passed and "not reloaded" in stale.description

    pipeline.run("lakehouse_job", asset_selection=[dg.AssetKey(["serving", "customer_segments"])])
    fresh = check(
        dg.build_asset_check_context(instance=pipeline.instance, resources={"warehouse": warehouse})
    )
    assert fresh.passed
