"""The orders' current state is stored partitioned by the month of the order, so that a day's MERGE
reads only the months its orders' changes name (``AutoCdc.partition``).

Expected partitions and rows are computed here with pandas over the landed DMS files and the
simulation's truth, never with the project's transforms.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import deltalake
import pandas as pd
import pytest
from pyspark.sql import functions as F

from lakehouse_dagster.cdc.spec import CURRENT_VERSIONS, AutoCdc, CdcConfig, StatePartition
from lakehouse_dagster.lake.adopt import staged_files
from lakehouse_dagster.lake.delta import DeltaRsLog, DeltaTables
from lakehouse_dagster.lake.layout import TableName, sql_literal
from lakehouse_dagster.maintenance.unit import PREFIX as MAINTENANCE
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing
from lakehouse_dagster_tests.test_cdc_apply import (
    CUSTOMER_STREAM,
    HISTORY,
    customer,
    dms_file,
    expected_versions,
    order,
    ts,
)
from lakehouse_dagster_tests.test_cdc_apply import versions as history_versions
from lakehouse_dagster_tests.units import as_an_earlier_release_wrote_it, run_table

ORDERS = TableName("silver", "sales_orders")
BRONZE = "bronze.sales_orders"
#: Three months and more, whatever the day the simulation starts on.
DAYS = 100


@pytest.fixture(scope="module")
def shop():
    return simulate_retail(days=DAYS, seed=11, customers=300, products=40, orders_per_day=15)


def land_through(shop, landing: Path, day: int | None = None) -> None:
    """Every file delivered before the end of the simulation's ``day`` (1 = its first); all if None."""
    write_landing(shop, landing, delivered_before=None if day is None else shop.start + timedelta(days=day))


def landed_orders(landing: Path) -> pd.DataFrame:
    frames = []
    for path in sorted((landing / "dms" / "sales" / "orders").glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")  # quarantined
        frames.append(frame.assign(_file=path.name))
    changes = pd.concat(frames, ignore_index=True)
    changes["order_month"] = month_of(changes["order_ts"])
    return changes


def month_of(times: pd.Series) -> pd.Series:
    return pd.to_datetime(times, errors="coerce").dt.to_period("M").dt.start_time.dt.date


def last_commit(uri: str) -> list[dict]:
    newest = sorted(Path(uri, "_delta_log").glob("*.json"))[-1]
    return [json.loads(line) for line in newest.read_text().splitlines()]


def silver_rows(tables) -> pd.DataFrame:
    return tables.read(ORDERS).toPandas()


def assert_orders_are_the_truth(tables, shop) -> None:
    """One row per order, with the status the simulation ended with."""
    rows = silver_rows(tables)
    assert not rows["order_id"].duplicated().any()
    truth = shop.truth.tables["orders"]
    assert sorted(zip(rows["order_id"].astype(str), rows["status"], strict=True)) == sorted(
        zip(truth["order_id"].astype(str), truth["status"], strict=True)
    )


def test_the_state_is_partitioned_by_month_and_a_delivery_reads_only_its_orders_months(
    tables, landing, shop, monkeypatch
) -> None:
    land_through(shop, landing, DAYS - 2)
    run_table(tables, BRONZE)
    run_table(tables, str(ORDERS))
    uri = tables.uri(ORDERS)
    assert deltalake.DeltaTable(uri).metadata().partition_columns == ["order_month"]
    before = set(landed_orders(landing)["_file"])
    read_months: list[set[date]] = []
    merge = DeltaTables.merge

    def recording_merge(self, name, source, upsert):
        if name == ORDERS:
            read_months.append(
                {date.fromisoformat(d) for d in re.findall(r"DATE'([\d-]+)'", upsert.target_filter)}
            )
        return merge(self, name, source, upsert)

    monkeypatch.setattr(DeltaTables, "merge", recording_merge)
    land_through(shop, landing)
    run_table(tables, BRONZE)
    result = run_table(tables, str(ORDERS))

    changes = landed_orders(landing)
    new_keys = set(changes.loc[~changes["_file"].isin(before), "order_id"])
    assert new_keys, "the last days deliver changes"
    # The months a MERGE of those orders may touch: every month any change of theirs names.
    their_months = {m for m in changes.loc[changes["order_id"].isin(new_keys), "order_month"] if pd.notna(m)}
    rows = silver_rows(tables)
    all_months = set(rows["order_month"])
    assert their_months < all_months, "the test needs months the delivery does not touch"
    rewritten = {
        date.fromisoformat(action["remove"]["partitionValues"]["order_month"])
        for action in last_commit(uri)
        if "remove" in action
    }
    assert rewritten, "the delivery updates orders already in the table"
    # The MERGE reads the months of the orders' rows and changes, and no other.
    [months_read] = read_months
    ended_in = set(rows.loc[rows["order_id"].astype(str).isin(new_keys), "order_month"])
    assert rewritten <= months_read
    assert ended_in <= months_read <= their_months
    assert result.metadata["lakehouse/merge_metrics"]["operation"] == "MERGE"

    # Every row in the partition of its own order time, and the rows are the source's state.
    assert (rows["order_month"] == month_of(rows["order_ts"])).all()
    assert_orders_are_the_truth(tables, shop)


def test_an_unpartitioned_state_of_an_earlier_release_is_rewritten_partitioned(tables, landing, shop) -> None:
    land_through(shop, landing, DAYS - 2)
    run_table(tables, BRONZE)
    run_table(tables, str(ORDERS))
    as_an_earlier_release_wrote_it(tables, ORDERS)
    assert deltalake.DeltaTable(tables.uri(ORDERS)).metadata().partition_columns == []

    land_through(shop, landing)
    run_table(tables, BRONZE)
    run_table(tables, str(ORDERS))

    assert deltalake.DeltaTable(tables.uri(ORDERS)).metadata().partition_columns == ["order_month"]
    rows = silver_rows(tables)
    assert (rows["order_month"] == month_of(rows["order_ts"])).all()
    truth = shop.truth.tables["orders"]
    assert sorted(rows["order_id"].astype(str)) == sorted(truth["order_id"].astype(str))
    assert sorted(zip(rows["order_id"].astype(str), rows["status"], strict=True)) == sorted(
        zip(truth["order_id"].astype(str), truth["status"], strict=True)
    )


def test_staged_partition_folders_give_each_file_its_values(tmp_path: Path, spark) -> None:
    frame = spark.createDataFrame(
        [(1, "a/b=c"), (2, None), (3, "plain")], "id INT, label STRING"
    )  # a value with the separators, and a null
    frame.write.partitionBy("label").parquet(str(tmp_path / "staged"))

    found = sorted(
        (file.partition_values["label"] or "", file.metadata.num_rows)
        for file in staged_files(str(tmp_path / "staged"), ["label"])
    )

    assert found == [("", 1), ("a/b=c", 1), ("plain", 1)]


def test_partition_values_become_sql_literals_and_other_types_are_refused() -> None:
    assert sql_literal(date(2026, 11, 5)) == "DATE'2026-11-05'"
    assert sql_literal(42) == "42"
    assert sql_literal("it's") == "'it\\'s'"
    with pytest.raises(TypeError, match="float"):
        sql_literal(1.5)


def test_a_partition_declared_on_a_history_or_over_a_kept_column_is_refused() -> None:
    config = CdcConfig(keys=("id",), sequence_by=("ts",), columns=("id", "ts", "day"))
    source = TableName("bronze", "things")
    history = CdcConfig(**{**config.__dict__, "scd_type": 2})
    with pytest.raises(ValueError, match="partitioned by CURRENT_VERSIONS only"):
        AutoCdc(source, history, partition=StatePartition("d", "ts"))
    with pytest.raises(ValueError, match="CURRENT_VERSIONS partitions a type 2 history only"):
        AutoCdc(source, config, partition=CURRENT_VERSIONS)
    assert AutoCdc(source, history, partition=CURRENT_VERSIONS).partition == CURRENT_VERSIONS
    with pytest.raises(ValueError, match="'day' is one of the table's columns"):
        AutoCdc(source, config, partition=StatePartition("day", "to_date(ts)"))


def test_a_first_build_with_every_change_quarantined_creates_the_partitioned_table_empty(
    tables, landing
) -> None:
    bad = [{**order(1, "placed", 2), "Op": "X", "dms_commit_ts": ts(2)}]
    dms_file(landing, "orders", "20261102-0900000000.csv", bad)
    run_table(tables, BRONZE)
    run_table(tables, str(ORDERS))

    table = deltalake.DeltaTable(tables.uri(ORDERS))
    assert table.metadata().partition_columns == ["order_month"]
    assert "order_month" in table.schema().to_arrow().names
    assert tables.read(ORDERS).count() == 0

    dms_file(
        landing,
        "orders",
        "20261103-0900000000.csv",
        [{**order(2, "paid", 3), "Op": "I", "dms_commit_ts": ts(3)}],
    )
    run_table(tables, BRONZE)
    run_table(tables, str(ORDERS))

    assert [(r["order_id"], r["order_month"]) for r in tables.read(ORDERS).collect()] == [
        (2, date(2026, 11, 1))
    ]


HISTORY_TABLE = "silver.sales_customers_history"


def test_a_history_reads_only_current_versions_unless_a_change_is_late_or_closes_a_new_key(
    tables, landing
) -> None:
    """Each delivery against the change-at-a-time oracle; what each MERGE read."""
    late = (
        "20261102-1300000000.csv",
        [{**customer(1, "late@x", "Oslo", "2"), "Op": "U", "dms_commit_ts": ts(2, 12)}],
    )
    born_and_gone = (
        "20261105-0900000000.csv",
        [
            {**customer(5, "e@x", "Oslo", "1"), "Op": "I", "dms_commit_ts": ts(5)},
            {**customer(5, "e@x", "Oslo", "1"), "Op": "D", "dms_commit_ts": ts(5, 10)},
        ],
    )
    stream = [*CUSTOMER_STREAM, late, born_and_gone]
    read = []
    for name, rows in stream:
        dms_file(landing, "customers", name, rows, full_load=name.startswith("LOAD"))
        run_table(tables, "bronze.sales_customers")
        read.append(run_table(tables, HISTORY_TABLE).metadata.get("lakehouse/versions_read"))
        assert history_versions(tables) == expected_versions(stream[: len(read)]), name

    # The first build reads nothing; the in-order deliveries read the current versions; a change
    # older than an applied one, and a version closed for a key with none current, read them all.
    assert read == [None, "current", "current", "current", "every", "every"]
    assert deltalake.DeltaTable(tables.uri(HISTORY)).metadata().partition_columns == ["is_current"]
    rows = tables.read(HISTORY).collect()
    assert all(row["is_current"] == (row["__END_AT"] is None) for row in rows)


def test_an_unpartitioned_history_of_an_earlier_release_is_rewritten_partitioned(tables, landing) -> None:
    for name, rows in CUSTOMER_STREAM[:2]:
        dms_file(landing, "customers", name, rows, full_load=name.startswith("LOAD"))
    run_table(tables, "bronze.sales_customers")
    run_table(tables, HISTORY_TABLE)
    as_an_earlier_release_wrote_it(tables, HISTORY)
    assert deltalake.DeltaTable(tables.uri(HISTORY)).metadata().partition_columns == []

    for name, rows in CUSTOMER_STREAM[2:]:
        dms_file(landing, "customers", name, rows)
    run_table(tables, "bronze.sales_customers")
    run_table(tables, HISTORY_TABLE)

    assert deltalake.DeltaTable(tables.uri(HISTORY)).metadata().partition_columns == ["is_current"]
    assert history_versions(tables) == expected_versions(CUSTOMER_STREAM)
    assert all(row["is_current"] == (row["__END_AT"] is None) for row in tables.read(HISTORY).collect())


# Compaction (the maintenance unit) against the applies: each MERGE adds files to the partitions
# it rewrites, and compaction rewrites them again. Whichever of the two commits second conflicts.


def orders_with_small_files(tables, landing, shop) -> str:
    """Two deliveries applied, a third landed and ingested but not applied; some of the table's
    partitions hold several files. Returns the table's URI."""
    for day in (DAYS - 10, DAYS - 5):
        land_through(shop, landing, day)
        run_table(tables, BRONZE)
        run_table(tables, str(ORDERS))
    land_through(shop, landing)
    run_table(tables, BRONZE)
    uri = tables.uri(ORDERS)
    partitions = tables.read(ORDERS).select("order_month").distinct().count()
    assert tables.files(ORDERS).files > partitions, "some partition holds several files"
    return uri


def operations(uri: str) -> list[str]:
    return [commit["operation"] for commit in reversed(deltalake.DeltaTable(uri).history())]


def test_a_compaction_committed_during_a_merge_makes_the_apply_run_again_once(
    tables, landing, shop, tmp_path, monkeypatch
) -> None:
    uri = orders_with_small_files(tables, landing, shop)
    compacted = tmp_path / "compacted"
    merges: list[TableName] = []
    merge_sql = DeltaTables._merge_sql

    def merge_during_compaction(self, name, source, statement):
        merges.append(name)

        @F.udf("boolean")
        def compact_once(_):
            # Runs while the engine executes the MERGE: after it read the table, before its commit.
            if not compacted.exists():
                compacted.touch()
                deltalake.DeltaTable(uri).optimize.compact()
            return True

        return merge_sql(
            self, name, source.where(compact_once(F.lit(1))) if name == ORDERS else source, statement
        )

    monkeypatch.setattr(DeltaTables, "_merge_sql", merge_during_compaction)
    result = run_table(tables, str(ORDERS))

    assert compacted.exists()
    assert merges.count(ORDERS) == 2, "the first MERGE conflicted with the compaction and ran again"
    assert operations(uri)[-2:] == ["OPTIMIZE", "MERGE"]
    assert result.metadata["lakehouse/batches_applied"], "the rerun applied the delivery"
    assert_orders_are_the_truth(tables, shop)


def test_a_compaction_of_files_a_merge_rewrote_meanwhile_is_refused_and_run_again(
    tables, landing, shop, monkeypatch
) -> None:
    uri = orders_with_small_files(tables, landing, shop)
    optimize = DeltaRsLog.optimize
    attempts: list[str] = []

    def compact_after_a_merge(self, table_uri, zorder_by):
        attempts.append(table_uri)
        if table_uri == uri and attempts.count(uri) == 1:
            stale = deltalake.DeltaTable(table_uri)  # the files compaction will rewrite
            run_table(tables, str(ORDERS))  # an apply MERGEs into the same files meanwhile
            stale.optimize.compact()
        return optimize(self, table_uri, zorder_by)

    monkeypatch.setattr(DeltaRsLog, "optimize", compact_after_a_merge)
    (resolved,) = [t for _, t in REGISTRY.resolved() if t.name == ORDERS]
    result = run_table(tables, str(ORDERS), maintenance=resolved.maintenance)

    assert attempts.count(uri) == 2, "the stale compaction was refused and maintenance ran again"
    assert operations(uri)[-2:] == ["MERGE", "OPTIMIZE"]
    assert (
        result.metadata[f"{MAINTENANCE}/files_after"]
        == tables.read(ORDERS).select("order_month").distinct().count()
    )
    assert_orders_are_the_truth(tables, shop)
