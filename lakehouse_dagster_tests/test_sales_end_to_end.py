"""The sales domain through Dagster, compared exactly with the simulator's truth.

Changes land in two waves: everything but the late CDC files, then the late files. The
partitions the late changes touched are refreshed by the sensor's run requests.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.partitions import range_tags
from lakehouse_dagster.deployment import Deployment, LakehouseSettings, WarehouseSettings
from lakehouse_dagster.domains.sales.tables import CUSTOMER_360 as CUSTOMER_360_TABLE
from lakehouse_dagster.domains.sales.tables import DAILY_SALES, dms_files
from lakehouse_dagster.domains.sales.tables import DOMAIN as SALES_DOMAIN
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.sample_data.retail import (
    CUSTOMER_HISTORY_OUTPUT_COLUMNS,
    FIRST_TOUCH_DUPLICATES,
    HALF_CENT_CUSTOMER_ID,
    HALF_CENT_ORDER_IDS,
    TABLE_COLUMNS,
    simulate_retail,
    write_landing,
)
from lakehouse_dagster_tests.events import materializations
from lakehouse_dagster_tests.exact import exact_rows, frame_rows
from lakehouse_dagster_tests.sales_oracle import SalesOracle

AS_OF = date(2026, 11, 26)
SILVER = {
    "customers": "sales_customers",
    "products": "sales_products",
    "orders": "sales_orders",
    "order_items": "sales_order_items",
}
SALES_KEYS = [dg.AssetKey(table.name.key_path) for table in SALES_DOMAIN.tables if not table.partitioned]
RUN_CONFIG = {"ops": {"gold__customer_360": {"config": {"as_of_date": AS_OF.isoformat()}}}}


def as_text(value: object) -> str | None:
    """A lake value written the way DMS writes it in CSV."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[tuple]:
    return sorted(
        (tuple(as_text(v) for v in record) for record in frame[list(columns)].itertuples(index=False)),
        key=repr,
    )


class Sales:
    def __init__(self, settings: LakehouseSettings, tables, landing) -> None:
        self.defs = build_definitions(settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.tables = tables
        self.landing = landing

    def run_lakehouse(self) -> dg.ExecuteInProcessResult:
        result = self.defs.resolve_job_def("lakehouse_job").execute_in_process(
            run_config=RUN_CONFIG, instance=self.instance, asset_selection=SALES_KEYS
        )
        assert result.success
        return result

    def run_facts(self, tags: dict[str, str]) -> dg.ExecuteInProcessResult:
        result = self.defs.resolve_job_def("sales_facts_job").execute_in_process(
            instance=self.instance, tags=tags
        )
        assert result.success
        return result

    def read(self, layer: str, table: str) -> pd.DataFrame:
        return self.tables.read(TableName(layer, table)).toPandas()


@pytest.fixture(scope="module")
def simulation():
    # This seed makes late CDC files for customers and order_items (late items touch old partitions),
    # and transactions that update a customer twice and move an order twice.
    return simulate_retail(days=6, seed=20, customers=300, products=40, orders_per_day=40)


@pytest.fixture(scope="module")
def sales(sail_url, spark, tmp_path_factory, simulation, postgres) -> Sales:
    """The pipeline built once for the module's tests (they only read, but the last one)."""
    layout = LakeLayout.local(str(tmp_path_factory.mktemp("sales") / "lake"))
    tables = DeltaTables(spark, layout)
    landing = Path(layout.landing)
    settings = LakehouseSettings(
        Deployment.TEST,
        layout,
        EngineSettings(remote_url=sail_url),
        warehouse=WarehouseSettings(url=postgres.new()),  # the facts job ends with serving.daily_sales
    )
    lake = Sales(settings, tables, landing)
    write_landing(simulation, landing, include_late=False)
    lake.first_run = lake.run_lakehouse()
    days = sorted({ts[:10] for ts in simulation.truth.tables["orders"]["order_ts"]})
    lake.run_facts(range_tags(date.fromisoformat(days[0]), date.fromisoformat(days[-1])))
    sensor = lake.defs.resolve_sensor_def("refresh_touched_order_dates")
    cursor = sensor(dg.build_sensor_context(instance=lake.instance)).cursor  # the first wave is built
    write_landing(simulation, landing, only_late=True)
    second = lake.run_lakehouse()
    lake.daily_sales_before_refresh = [row.asDict() for row in tables.read(DAILY_SALES).collect()]
    lake.touched = {
        (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"])
        for run in sensor(dg.build_sensor_context(instance=lake.instance, cursor=cursor)).run_requests
    }
    for start, end in sorted(lake.touched):
        lake.run_facts(
            {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        )
    lake.second_run = second
    return lake


def test_the_files_the_simulator_lands_have_the_columns_the_pipeline_declares(sales) -> None:
    for table in TABLE_COLUMNS:
        declared = dms_files(table).columns  # Op, dms_commit_ts, the table's columns
        folder = sales.landing / declared_folder(table)
        headers = {path.name: path.read_text().split("\n", 1)[0].split(",") for path in folder.glob("*.csv")}
        assert headers, table
        for name, header in headers.items():
            expected = declared[1:] if name.startswith("LOAD") else declared
            assert tuple(header) == expected, (table, name)


def declared_folder(table: str) -> str:
    return dms_files(table).folder


def test_silver_current_state_and_history_equal_the_truth(sales, simulation) -> None:
    stats = simulation.stats
    assert stats["late_files"] >= 1 and stats["reordered"] >= 1
    assert stats["customers_updated_twice"] >= 1 and stats["orders_moved_twice"] >= 1
    assert stats[FIRST_TOUCH_DUPLICATES] >= 2, "in customers and in orders"
    for source, silver in SILVER.items():
        truth = simulation.truth.tables[source]
        columns = TABLE_COLUMNS[source]
        assert rows(sales.read("silver", silver), columns) == rows(truth, columns), source

    history = simulation.truth.customers_history
    lake_history = sales.read("silver", "sales_customers_history")
    start, end = lake_history["__START_AT"], lake_history["__END_AT"]  # structs
    flat = lake_history.assign(
        __START_AT=start.map(lambda at: _micro(at["dms_commit_ts"])),
        __START_AT_CHANGE_SEQ=start.map(lambda at: at["AR_H_CHANGE_SEQ"]),
        __END_AT=end.map(lambda at: None if at is None else _micro(at["dms_commit_ts"])),
        __END_AT_CHANGE_SEQ=end.map(lambda at: None if at is None else at["AR_H_CHANGE_SEQ"]),
    )
    assert rows(flat, CUSTOMER_HISTORY_OUTPUT_COLUMNS) == rows(history, CUSTOMER_HISTORY_OUTPUT_COLUMNS)
    within_one_commit = history[history["__START_AT"] == history["__END_AT"]]
    assert len(within_one_commit) >= 1, "a version that starts and ends in one transaction"
    applied = {f"silver/silver.{table}" for table in (*SILVER.values(), "sales_customers_history")}
    for run in (sales.first_run, sales.second_run):
        primary_keys = {
            e.asset_key.to_user_string(): e.passed
            for e in run.get_asset_check_evaluations()
            if e.check_name == "primary_key"
        }
        assert {key: primary_keys[key] for key in applied} == dict.fromkeys(applied, True), "unique keys"


def _micro(value):
    return None if value is None or pd.isna(value) else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def test_late_changes_refresh_the_partitions_they_touched(sales, oracle) -> None:
    touched = set()
    for node in ("silver__sales_orders", "silver__sales_order_items"):
        for materialization in sales.second_run.asset_materializations_for_node(node):
            touched |= set(
                materialization.metadata.get("lakehouse/touched_dates", dg.MetadataValue.json([])).value
            )
    assert touched, "the late files touched orders"
    requested = {
        day for start, end in sales.touched for day in pd.date_range(start, end).strftime("%Y-%m-%d")
    }
    assert requested == touched

    expected = oracle.daily_sales()
    before = sales.daily_sales_before_refresh
    assert exact_rows(before, list(before[0])) != exact_rows(expected, list(before[0])), (
        "the late changes matter to daily sales"
    )
    assert matches_the_oracle(sales, "daily_sales", expected)


def matches_the_oracle(sales: Sales, table: str, expected: list[dict]) -> bool:
    """The gold table equals the oracle's rows bit for bit, in every column of the table."""
    frame = sales.tables.read(TableName("gold", table))
    assert all(set(row) == set(frame.columns) for row in expected), table
    return frame_rows(frame) == exact_rows(expected, frame.columns)


@pytest.fixture(scope="module")
def oracle(sales) -> SalesOracle:
    """The marts in Python decimal over every landed DMS file (both waves)."""
    return SalesOracle(sales.landing)


def test_daily_sales_equals_the_decimal_oracle_for_every_date(sales, oracle) -> None:
    expected = oracle.daily_sales()
    assert len({row["order_date"] for row in expected}) >= 7, "several dates"
    assert matches_the_oracle(sales, "daily_sales", expected)


def test_customer_360_and_product_performance_equal_the_decimal_oracle(sales, oracle) -> None:
    expected = oracle.customer_360(AS_OF)
    assert sum(row["order_count"] > 0 for row in expected) > 100
    assert {row["country"] for row in expected if row["order_count"]} >= {"US", "DE", "GB"}, (
        "three currencies"
    )
    assert matches_the_oracle(sales, "customer_360", expected)
    assert matches_the_oracle(sales, "product_performance", oracle.product_performance())


def test_an_average_on_a_half_cent_is_rounded_half_up(sales, oracle) -> None:
    items = [line for line in oracle.lines if line.order_id in HALF_CENT_ORDER_IDS]
    exact = sum(line.amount for line in items) / len(HALF_CENT_ORDER_IDS)
    assert exact.as_tuple().exponent == -3 and exact.as_tuple().digits[-1] == 5, f"{exact} is a half cent"
    half_up = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert half_up != exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN), "the modes differ here"

    lake = {row.customer_id: row for row in sales.tables.read(CUSTOMER_360_TABLE).collect()}
    forced = lake[HALF_CENT_CUSTOMER_ID]
    assert (forced.order_count, forced.average_order_value_usd) == (2, half_up)

    on_half_cents = {
        customer_id: revenue / count
        for customer_id, (revenue, count) in oracle.customer_usd_totals().items()
        if count and (revenue * 200) % count == 0 and (revenue * 200 / count) % 2 == 1
    }
    assert len(on_half_cents) >= 2, "the forced tie, and others by chance"
    for customer_id, average in on_half_cents.items():
        rounded = lake[customer_id].average_order_value_usd
        assert rounded == average + Decimal("0.005"), (customer_id, average, rounded)


def test_a_range_backfill_is_one_run_with_one_write_per_asset_and_reruns_identically(sales) -> None:
    tables = ("sales_order_facts", "sales_order_item_facts")
    versions = {t: sales.tables.version(TableName("silver", t)) for t in tables}
    gold_version = sales.tables.version(TableName("gold", "daily_sales"))
    before = {t: rows(sales.read("silver", t), tuple(sales.read("silver", t).columns)) for t in tables}
    runs_before = len(sales.instance.get_runs())

    result = sales.run_facts(range_tags(date(2026, 11, 20), date(2026, 11, 25)))

    assert len(sales.instance.get_runs()) == runs_before + 1
    materialized = {m.partition for m in materializations(result, DAILY_SALES)}
    assert materialized == {f"2026-11-{d}" for d in range(20, 26)}
    for table in tables:
        assert sales.tables.version(TableName("silver", table)) == versions[table] + 1, (
            "one write for the range"
        )
        frame = sales.read("silver", table)
        assert rows(frame, tuple(frame.columns)) == before[table], "a rerun gives identical results"
    assert sales.tables.version(TableName("gold", "daily_sales")) == gold_version + 1


def test_daily_sales_alone_for_days_whose_facts_were_never_built_writes_nothing(sales) -> None:
    """It would read no facts and write those days empty, its checks passing on no rows and its
    served copy emptied: the step refuses, naming the facts table and the days."""
    built = sales.instance.get_materialized_partitions(
        dg.AssetKey(["silver", "silver.sales_order_item_facts"])
    )
    first = date.fromisoformat(min(built)) - timedelta(days=5)  # days before the simulated ones
    last = first + timedelta(days=2)
    version = sales.tables.version(DAILY_SALES)

    result = sales.defs.resolve_job_def("sales_facts_job").execute_in_process(
        instance=sales.instance,
        asset_selection=[dg.AssetKey(DAILY_SALES.key_path)],
        tags=range_tags(first, last),
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error.message
    assert f"silver.sales_order_item_facts for {first}..{last}" in message
    assert "run sales_facts_job for them" in message
    assert sales.tables.version(DAILY_SALES) == version


def test_each_day_of_a_range_shows_its_own_rows_and_quality_counts(sales) -> None:
    """After a ranged run, a day's materialisation has that day's rows and failures (pandas over
    the tables written), the whole write's figures are reported once, and the quality history has
    one record per day and expectation."""
    first, last = date(2026, 11, 21), date(2026, 11, 24)
    result = sales.run_facts(range_tags(first, last))

    days = [d.isoformat() for d in pd.date_range(first, last).date]
    facts = sales.read("silver", "sales_order_facts")
    facts["day"] = facts["order_date"].astype(str)
    daily = sales.read("gold", "daily_sales")
    daily["day"] = daily["order_date"].astype(str)
    for name, frame in ((TableName("silver", "sales_order_facts"), facts), (DAILY_SALES, daily)):
        events = {m.partition: m.metadata for m in materializations(result, name)}
        assert list(events) == days
        for day, metadata in events.items():
            assert metadata["dagster/row_count"].value == int((frame["day"] == day).sum()) > 0, (name, day)
            assert metadata["lakehouse/rows_evaluated"].value == int((frame["day"] == day).sum())
        assert [day for day, metadata in events.items() if "dagster/column_schema" in metadata] == [days[-1]]
        assert events[days[-1]]["lakehouse/table_rows"].value == len(frame)
    lines = {
        m.partition: m.metadata for m in materializations(result, TableName("silver", "sales_order_facts"))
    }
    for day in days:
        without_lines = int(((facts["day"] == day) & (facts["line_count"] == 0)).sum())
        assert lines[day]["quality/has_lines/failed_records"].value == without_lines

    history = sales.tables.read(TableName("ops", "data_quality")).toPandas()
    of_run = history[(history["run_id"] == result.run_id) & (history["asset"] == str(DAILY_SALES))]
    expectations = {
        e.name for e in next(t for t in SALES_DOMAIN.tables if t.name == DAILY_SALES).expectations
    }
    assert sorted(of_run["partition"].unique()) == days
    assert len(of_run) == len(days) * len(expectations)
    for day in days:
        records = of_run[of_run["partition"] == day]
        assert set(records["passed"] + records["failed"]) == {int((daily["day"] == day).sum())}


def test_gold_lineage_names_real_silver_columns(sales) -> None:
    declared = [table for table in SALES_DOMAIN.tables if table.column_lineage]
    assert declared
    for table in declared:
        for column, inputs in table.column_lineage.items():
            assert column in sales.tables.read(table.name).columns
            for source, name in inputs:
                assert name in sales.tables.read(source).columns, (table.name, column, source, name)
