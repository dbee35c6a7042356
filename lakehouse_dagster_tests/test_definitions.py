"""The code location: asset graph, checks, jobs, and the resources each deployment gets."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

import lakehouse_dagster
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import Deployment, LakehouseSettings, SettingsError, declared_variable_names
from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.lake.layout import TableName

PROD_ENV = {
    "LAKEHOUSE_DEPLOYMENT": "prod",
    "LAKEHOUSE_ROOT": "s3://acme-silver/_lakehouse",
    "LAKEHOUSE_ROOT_BRONZE": "s3://acme-bronze",
    "LAKEHOUSE_LANDING": "s3://acme-landing",
    "LAKEHOUSE_SPARK_REMOTE": "sc://spark.internal:15002",
    "AWS_REGION": "eu-west-1",
    "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/dagster",
}


def definitions(env: dict[str, str]) -> dg.Definitions:
    return build_definitions(LakehouseSettings.from_env(env))


def test_the_code_location_loads() -> None:
    from lakehouse_dagster.definitions import defs

    dg.Definitions.validate_loadable(defs)


def test_asset_graph_runs_bronze_to_silver_to_gold() -> None:
    graph = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"}).resolve_asset_graph()
    key = dg.AssetKey

    assert {
        key(["bronze", "customers"]),
        key(["silver", "customers"]),
        key(["gold", "customer_segments"]),
    } <= set(graph.get_all_asset_keys())
    assert graph.get(key(["silver", "customers"])).parent_keys == {key(["bronze", "customers"])}
    assert graph.get(key(["gold", "customer_segments"])).parent_keys == {key(["silver", "customers"])}


def test_every_table_reports_its_checks_and_error_checks_block() -> None:
    defs = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})
    specs = {
        (spec.asset_key.to_user_string(), spec.name): spec
        for assets in defs.assets
        for spec in assets.check_specs
    }

    assert set(specs) >= {
        ("bronze/customers", "no_rescued_data"),
        ("bronze/customers", "no_rejected_files"),
        ("silver/customers", "customer_id_present"),
        ("silver/customers", "primary_key"),
        ("silver/customers", "customer_segment_allowed"),
        ("gold/customer_segments", "shares_sum_to_one"),
        ("gold/customer_segments", "known_segment"),
    }
    assert not specs[("bronze/customers", "no_rescued_data")].blocking, "warn"
    assert not specs[("silver/customers", "customer_id_present")].blocking, "drop"
    assert specs[("gold/customer_segments", "known_segment")].blocking, "fail"
    assert specs[("silver/customers", "primary_key")].blocking


def test_every_table_declares_expectations_and_silver_and_gold_a_primary_key() -> None:
    from lakehouse_dagster.units import ALL_UNITS

    for unit in ALL_UNITS:
        assert unit.expectations, f"{unit.name} declares no expectation"
        if unit.name.layer in ("silver", "gold"):
            assert unit.primary_key, f"{unit.name} declares no primary key"


def test_jobs_split_the_daily_partitioned_facts_from_the_rest() -> None:
    defs = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})
    graph = defs.resolve_asset_graph()
    every = set(graph.get_all_asset_keys())
    partitioned = {key for key in every if graph.get(key).partitions_def is not None}

    assert partitioned == {
        dg.AssetKey(["silver", "order_facts"]),
        dg.AssetKey(["silver", "order_item_facts"]),
        dg.AssetKey(["gold", "daily_sales"]),
    }
    assert all(graph.get(key).backfill_policy == dg.BackfillPolicy.single_run() for key in partitioned)
    assert defs.resolve_job_def("lakehouse_job").asset_layer.executable_asset_keys == every - partitioned
    assert defs.resolve_job_def("sales_facts_job").asset_layer.executable_asset_keys == partitioned
    assert defs.resolve_schedule_def("daily_lakehouse").job_name == "lakehouse_job"
    assert defs.resolve_schedule_def("daily_sales_facts").job_name == "sales_facts_job"
    assert defs.resolve_sensor_def("refresh_touched_order_dates").job_name == "sales_facts_job"


def test_the_sales_domain_has_bronze_silver_and_gold_for_every_dms_table() -> None:
    keys = {key.to_user_string() for key in definitions({}).resolve_asset_graph().get_all_asset_keys()}

    for table in ("customers", "products", "orders", "order_items"):
        assert f"bronze/sales_{table}" in keys
    assert {
        "silver/sales_customers",
        "silver/sales_customers_history",
        "silver/products",
        "silver/orders",
        "silver/order_items",
        "gold/customer_360",
        "gold/product_performance",
    } <= keys


def test_gold_marts_declare_column_lineage_to_existing_silver_columns() -> None:
    from lakehouse_dagster.units import ALL_UNITS

    lineage = {str(unit.name): unit.column_lineage for unit in ALL_UNITS if unit.column_lineage}
    assert set(lineage) == {"gold.daily_sales", "gold.customer_360", "gold.product_performance"}
    for deps in lineage.values():
        for inputs in deps.values():
            assert inputs and all(table.layer == "silver" for table, _ in inputs)


def test_local_runs_in_one_process_on_an_embedded_engine() -> None:
    defs = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})

    assert defs.resolve_job_def("lakehouse_job").executor_def.name == dg.in_process_executor.name
    spark = defs.resources["spark"]
    assert isinstance(spark, SparkResource) and spark.mode == "embedded"
    assert (
        defs.resources["lake"].layout().table_uri(TableName("silver", "customers"))
        == "/tmp/lake/silver/customers"
    )


def test_a_spark_connect_url_replaces_the_embedded_engine() -> None:
    spark = definitions({"LAKEHOUSE_SPARK_REMOTE": "sc://127.0.0.1:15002"}).resources["spark"]
    assert (spark.mode, spark.remote_url) == ("remote", "sc://127.0.0.1:15002")


def test_production_reads_s3_roots_and_a_remote_engine() -> None:
    defs = definitions(PROD_ENV)

    layout = defs.resources["lake"].layout()
    assert layout.table_uri(TableName("bronze", "customers")) == "s3://acme-bronze/customers"
    assert layout.table_uri(TableName("ops", "x")) == "s3://acme-silver/_lakehouse/ops/x"
    assert defs.resolve_job_def("lakehouse_job").executor_def.name == dg.multiprocess_executor.name
    assert defs.resources["spark"].mode == "remote"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEHOUSE_DEPLOYMENT": "staging"}, "LAKEHOUSE_DEPLOYMENT='staging'"),
        ({"LAKEHOUSE_DEPLOYMENT": "test"}, "LAKEHOUSE_ROOT"),
        ({**PROD_ENV, "LAKEHOUSE_SPARK_REMOTE": ""}, "LAKEHOUSE_SPARK_REMOTE"),
        ({"LAKEHOUSE_SPARK_REMOTE": "localhost:15002"}, "LAKEHOUSE_SPARK_REMOTE: .*sc://"),
        ({"LAKEHOUSE_AS_OF_DATE": "26/11/2026"}, "LAKEHOUSE_AS_OF_DATE"),
    ],
)
def test_wrong_settings_name_the_variable(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        LakehouseSettings.from_env(env)


def test_test_deployment_needs_an_explicit_root() -> None:
    settings = LakehouseSettings.from_env({"LAKEHOUSE_DEPLOYMENT": "test", "LAKEHOUSE_ROOT": "/tmp/x"})
    assert (settings.deployment, settings.layout.landing) == (Deployment.TEST, "/tmp/x/landing")


def test_every_environment_variable_the_code_reads_is_declared() -> None:
    package = Path(lakehouse_dagster.__file__).parent
    reads = re.compile(
        r"""(?:environ\.get|getenv|environ\[|EnvVar\(|value\()\s*\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    names = {name for path in package.rglob("*.py") for name in reads.findall(path.read_text())}

    assert names, "the scan found no reads at all; the pattern is broken"
    assert names <= declared_variable_names(), names - declared_variable_names()


def test_every_asset_has_a_freshness_policy_and_a_schema_change_check() -> None:
    defs = definitions({"LAKEHOUSE_ROOT": "/tmp/lake"})
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    check_keys = {key for checks in defs.asset_checks for key in checks.check_keys}

    assert all(graph.get(key).freshness_policy is not None for key in keys)
    assert {key.asset_key for key in check_keys if key.name == "column_schema_change"} == keys
