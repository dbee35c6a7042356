"""Both domains through Dagster into a real PostgreSQL warehouse, with Glue on a moto server.

The served tables are compared with gold column by column, gold read independently with
deltalake; the serving checks, the Glue registrations and the freshness check are verified
against what the lake and the Dagster instance say.
"""

from __future__ import annotations

import dagster as dg
import deltalake
import pyarrow as pa
import pytest

from lakehouse_dagster.defs.partitions import range_tags
from lakehouse_dagster.defs.serving import FRESHNESS_CHECK, RECONCILE_CHECK
from lakehouse_dagster.domains.ml.tables import CHURN_SCORES
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.serving.spec import LOADED_AT

from .served_pipeline import RUN_CONFIG, ServedPipeline

# The tables the jobs serve; those that follow a stream are served by automation (test_events_end_to_end).
SERVED = [table for table in REGISTRY.served() if not REGISTRY.follows_a_stream(table)]


def lake_rows(uri: str) -> pa.Table:
    """Gold as deltalake reads it, apart from the loader's own reads (no filter, no cast)."""
    table = deltalake.DeltaTable(uri)
    return pa.table(deltalake.QueryBuilder().register("t", table).execute("SELECT * FROM t").read_all())


@pytest.fixture
def pipeline(served_pipeline: ServedPipeline) -> ServedPipeline:
    return served_pipeline


def test_every_served_table_equals_gold_column_by_column(pipeline: ServedPipeline) -> None:
    assert {t.name.table for t in SERVED} == {
        "customer_segments",
        "daily_sales",
        "customer_360",
        "product_performance",
        "customer_features",
        "customer_churn_scores",
    }
    for table in SERVED:
        gold = lake_rows(pipeline.layout.table_uri(table.name))
        # Four days of orders train no churn model (it needs two 60-day horizons): no scores yet,
        # and the served copy must be empty too.
        untrained = table.name == CHURN_SCORES
        assert (gold.num_rows == 0) if untrained else (gold.num_rows > 0), table.name
        key = list(table.primary_key)
        expected = sorted(gold.to_pylist(), key=lambda row: tuple(row[c] for c in key))
        columns = gold.column_names
        quoted = ", ".join(f'"{c}"' for c in columns)
        order = ", ".join(f'"{c}"' for c in key)
        loaded = pipeline.warehouse(f"SELECT {quoted} FROM serving.{table.name.table} ORDER BY {order}")
        assert len(loaded) == len(expected), table.name
        for index, column in enumerate(columns):
            assert [row[index] for row in loaded] == [row[column] for row in expected], (table.name, column)


def test_the_warehouse_keeps_the_types_of_gold(pipeline: ServedPipeline) -> None:
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


def test_the_serving_checks_pass_and_count_every_day(pipeline: ServedPipeline) -> None:
    evaluations = [
        event.event_specific_data
        for result in pipeline.results
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
        and event.event_specific_data.asset_check_key.asset_key.path[0] == "serving"
    ]
    seen = {(e.asset_check_key.asset_key.path[-1], e.asset_check_key.name) for e in evaluations}
    for table in SERVED:
        served = f"serving.{table.name.table}"
        assert (served, RECONCILE_CHECK) in seen and (served, FRESHNESS_CHECK) in seen
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]
    daily = next(
        e
        for e in evaluations
        if e.asset_check_key
        == dg.AssetCheckKey(dg.AssetKey(["serving", "serving.daily_sales"]), RECONCILE_CHECK)
    )
    assert daily.metadata["days_compared"].value == len(pipeline.days)


def test_a_range_backfill_is_one_load_and_a_reload_changes_no_row(pipeline: ServedPipeline) -> None:
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


def test_silver_and_gold_are_registered_in_glue_as_delta_tables(pipeline: ServedPipeline) -> None:
    built = [t for t in REGISTRY.tables if not REGISTRY.follows_a_stream(t)]  # the jobs' tables
    expected = {f"{t.name.layer}_{t.name.table}" for t in built if t.name.layer in ("silver", "gold")}
    glue = pipeline.glue_tables()
    assert set(glue) == expected
    daily = glue["gold_daily_sales"]
    uri = pipeline.layout.table_uri(TableName("gold", "daily_sales"))
    assert daily["StorageDescriptor"]["Location"] == uri
    assert daily["Parameters"]["table_type"] == "DELTA"
    assert [k["Name"] for k in daily["PartitionKeys"]] == ["order_date"]
    log = deltalake.DeltaTable(uri).schema()
    names = [field.name for field in log.fields if field.name != "order_date"]
    assert [c["Name"] for c in daily["StorageDescriptor"]["Columns"]] == names


def test_the_freshness_check_fails_when_gold_is_rebuilt_without_serving_it(pipeline: ServedPipeline) -> None:
    segments = [dg.AssetKey(["bronze", "bronze.customers"]), dg.AssetKey(["silver", "silver.customers"])]
    gold = dg.AssetKey(["gold", "gold.customer_segments"])
    pipeline.run("lakehouse_job", run_config=RUN_CONFIG, asset_selection=[*segments, gold])
    check = pipeline.defs.get_asset_checks_def(
        dg.AssetCheckKey(dg.AssetKey(["serving", "serving.customer_segments"]), FRESHNESS_CHECK)
    )
    warehouse = pipeline.defs.resources["warehouse"]

    stale = check(
        dg.build_asset_check_context(instance=pipeline.instance, resources={"warehouse": warehouse})
    )
    assert not stale.passed and "not reloaded" in stale.description

    pipeline.run("lakehouse_job", asset_selection=[dg.AssetKey(["serving", "serving.customer_segments"])])
    fresh = check(
        dg.build_asset_check_context(instance=pipeline.instance, resources={"warehouse": warehouse})
    )
    assert fresh.passed
