"""Applying DMS changes to silver with MERGE: SCD1 and SCD2 against the change-at-a-time oracle."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest

from lakehouse_dagster.cdc.apply import progress_table
from lakehouse_dagster.domains.sales.source import TABLE_COLUMNS as SOURCE_COLUMNS
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster_tests.landing_files import land
from lakehouse_dagster_tests.oracle import apply_changes_scd1, apply_changes_scd2
from lakehouse_dagster_tests.units import UnitFailed, run_table

ORDER_COLUMNS = SOURCE_COLUMNS["orders"]
CUSTOMER_COLUMNS = SOURCE_COLUMNS["customers"]
ORDERS = TableName("silver", "sales_orders")


def ts(day: int, hour: int = 9) -> str:
    return f"2026-11-{day:02d} {hour:02d}:00:00.000000"


def order(order_id: int, status: str, day: int, customer: int = 1) -> dict:
    return {
        "order_id": order_id,
        "customer_id": customer,
        "order_ts": f"2026-11-{day:02d} 08:00:00",
        "status": status,
        "currency": "USD",
        "updated_at": f"2026-11-{day:02d} 08:00:00",
    }


def dms_file(
    landing: Path,
    table: str,
    name: str,
    rows: list[dict],
    *,
    full_load: bool = False,
    columns: tuple[str, ...] | None = None,
) -> Path:
    columns = (
        columns or (("dms_commit_ts",) if full_load else ("Op", "dms_commit_ts")) + SOURCE_COLUMNS[table]
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return land(landing / "dms" / "sales" / table, name, buffer.getvalue())


def run(tables, layout, *names: str) -> dict[str, dict]:
    return {name: run_table(tables, name).metadata for name in names}


def apply_orders(tables, layout) -> dict:
    return run(tables, layout, "bronze.sales_orders", "silver.sales_orders")["silver.sales_orders"]


def silver_orders(tables) -> dict[int, str]:
    return {row["order_id"]: row["status"] for row in tables.read(ORDERS).collect()}


def expected_orders(changes: list[dict]) -> dict[int, str]:
    state = apply_changes_scd1(changes, ("order_id",), ("dms_commit_ts", "_file", "_row"))
    return {int(key[0]): change["status"] for key, change in state.items()}


def changes_of(*files: tuple[str, list[dict]]) -> list[dict]:
    """The changes as the oracle sees them: with their file name and line as the tie-break."""
    return [{**row, "_file": name, "_row": i} for name, rows in files for i, row in enumerate(rows)]


def test_late_duplicated_and_out_of_order_changes_end_in_the_true_state(tables, landing, layout) -> None:
    load = [{**order(i, "placed", 1), "dms_commit_ts": ts(1)} for i in (1, 2, 3)]
    first = [
        {**order(1, "shipped", 1), "Op": "U", "dms_commit_ts": ts(5)},
        {**order(2, "placed", 1), "Op": "D", "dms_commit_ts": ts(3)},
        {**order(4, "placed", 4), "Op": "I", "dms_commit_ts": ts(4)},
        {**order(4, "placed", 4), "Op": "I", "dms_commit_ts": ts(4)},  # delivered twice
    ]
    late = [
        {**order(1, "paid", 1), "Op": "U", "dms_commit_ts": ts(3)},  # older than "shipped"
        {**order(2, "paid", 1), "Op": "U", "dms_commit_ts": ts(2)},  # older than the delete
        {**order(2, "placed", 6), "Op": "I", "dms_commit_ts": ts(6)},  # re-insert after the delete
    ]
    dms_file(landing, "orders", "LOAD00000001.csv", load, full_load=True)
    dms_file(landing, "orders", "20261105-0900000000.csv", first)
    apply_orders(tables, layout)
    assert silver_orders(tables) == {1: "shipped", 3: "placed", 4: "placed"}

    dms_file(landing, "orders", "20261103-0900000000.csv", late)  # arrives after later files
    metadata = apply_orders(tables, layout)

    everything = changes_of(("LOAD", load), ("20261105", first), ("20261103", late))
    assert (
        silver_orders(tables)
        == expected_orders(everything)
        == {1: "shipped", 2: "placed", 3: "placed", 4: "placed"}
    )
    assert metadata["lakehouse/touched_dates"] == ["2026-11-01", "2026-11-06"]


def test_reapplying_the_same_batches_changes_nothing(tables, landing, layout) -> None:
    dms_file(
        landing,
        "orders",
        "LOAD00000001.csv",
        [{**order(1, "placed", 1), "dms_commit_ts": ts(1)}],
        full_load=True,
    )
    dms_file(
        landing,
        "orders",
        "20261102-0900000000.csv",
        [{**order(1, "paid", 1), "Op": "U", "dms_commit_ts": ts(2)}],
    )
    apply_orders(tables, layout)
    state, version = silver_orders(tables), tables.version(ORDERS)

    again = apply_orders(tables, layout)  # nothing new
    assert again["lakehouse/batches_applied"] == []
    tables.overwrite(progress_table(ORDERS), tables.read(progress_table(ORDERS)).limit(0))  # forget progress
    reapplied = apply_orders(tables, layout)

    assert reapplied["lakehouse/batches_applied"], "the batches were applied a second time"
    assert silver_orders(tables) == state
    assert tables.version(ORDERS) == version, "a merge that changes nothing commits nothing"


def test_unknown_operations_and_rows_without_key_are_quarantined_not_applied(tables, landing, layout) -> None:
    dms_file(
        landing,
        "orders",
        "LOAD00000001.csv",
        [{**order(1, "placed", 1), "dms_commit_ts": ts(1)}],
        full_load=True,
    )
    dms_file(
        landing,
        "orders",
        "20261102-0900000000.csv",
        [
            {**order(1, "cancelled", 1), "Op": "X", "dms_commit_ts": ts(2)},
            {**order(1, "paid", 1), "Op": "U", "dms_commit_ts": ts(3), "order_id": None},
            {**order(1, "shipped", 1), "Op": "U", "dms_commit_ts": "not a time"},
        ],
    )

    results = run(tables, layout, "bronze.sales_orders", "silver.sales_orders")
    metadata = results["silver.sales_orders"]

    assert silver_orders(tables) == {1: "placed"}
    quarantined = tables.read(quarantine_table(ORDERS)).collect()
    assert sorted(sorted(r["_failed_expectations"]) for r in quarantined) == [
        ["key_present"],
        ["known_operation"],
        ["nothing_rescued", "sequence_present"],
    ]
    assert metadata["lakehouse/rows_quarantined"] == 3
    assert all(r["_run_id"] == "test" for r in quarantined)

    run(tables, layout, "silver.sales_orders")  # nothing new: the quarantine does not grow
    tables.overwrite(progress_table(ORDERS), tables.read(progress_table(ORDERS)).limit(0))
    run(tables, layout, "silver.sales_orders")  # the same batch again: still no duplicates
    assert tables.read(quarantine_table(ORDERS)).count() == 3


def test_a_cdc_file_without_a_key_column_fails_naming_the_file(tables, landing, layout) -> None:
    columns = ("Op", "dms_commit_ts", *(c for c in ORDER_COLUMNS if c != "order_id"))
    bad = dms_file(
        landing,
        "orders",
        "20261102-0900000000.csv",
        [{**order(1, "paid", 1), "Op": "U", "dms_commit_ts": ts(2)}],
        columns=columns,
    )

    with pytest.raises(UnitFailed, match=rf"MissingColumnError: .*file {bad} has no column\(s\) order_id"):
        run(tables, layout, "bronze.sales_orders")

    assert not tables.exists(TableName("bronze", "sales_orders"))


def customer(customer_id: int, email: str, city: str, phone: str) -> dict:
    return {
        "customer_id": customer_id,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": email,
        "phone": phone,
        "street": "1 Main St",
        "city": city,
        "country": "US",
        "created_at": "2026-10-01 00:00:00",
        "updated_at": "2026-10-01 00:00:00",
    }


CUSTOMER_STREAM = [
    (
        "LOAD00000001.csv",
        [
            {**customer(1, "a@x", "Oslo", "1"), "dms_commit_ts": ts(1)},
            {**customer(2, "b@x", "Lima", "1"), "dms_commit_ts": ts(1)},
        ],
    ),
    (
        "20261102-0900000000.csv",
        [
            {**customer(1, "a@x", "Oslo", "2"), "Op": "U", "dms_commit_ts": ts(2)},
            {**customer(2, "b@x", "Lima", "1"), "Op": "D", "dms_commit_ts": ts(2, 10)},
        ],
    ),
    (
        "20261103-0900000000.csv",
        [
            {**customer(1, "new@x", "Oslo", "2"), "Op": "U", "dms_commit_ts": ts(3)},
            {**customer(2, "b2@x", "Rome", "5"), "Op": "I", "dms_commit_ts": ts(3)},
        ],
    ),
    ("20261104-0900000000.csv", [{**customer(1, "new@x", "Bergen", "3"), "Op": "U", "dms_commit_ts": ts(4)}]),
]


def customer_history(tables, layout, landing, delivery: list[int]) -> list[tuple]:
    for index in delivery:
        name, rows = CUSTOMER_STREAM[index]
        dms_file(landing, "customers", name, rows, full_load=name.startswith("LOAD"))
        run(tables, layout, "bronze.sales_customers", "silver.sales_customers_history")
    rows = tables.read(TableName("silver", "sales_customers_history")).collect()
    return sorted(
        (r["customer_id"], r["email"], r["city"], r["phone"], r["__START_AT"], r["__END_AT"]) for r in rows
    )


@pytest.mark.parametrize("delivery", [[0, 1, 2, 3], [0, 3, 2, 1], [0, 2, 3, 1]])
def test_history_is_the_same_whatever_the_delivery_order(tables, layout, landing, delivery) -> None:
    history = customer_history(tables, layout, landing, delivery)

    changes = changes_of(*CUSTOMER_STREAM)
    for change in changes:
        change["dms_commit_ts"] = datetime.fromisoformat(change["dms_commit_ts"])
        change["customer_id"] = int(change["customer_id"])
    expected = apply_changes_scd2(
        changes,
        ("customer_id",),
        ("dms_commit_ts", "_file", "_row"),
        ("email", "street", "city", "country"),
        "dms_commit_ts",
    )
    assert history == sorted(
        (v["customer_id"], v["email"], v["city"], v["phone"], v["__START_AT"], v["__END_AT"])
        for v in expected
    )
    assert len(history) == 5 and date(2026, 11, 3) in {row[4].date() for row in history}


def test_a_history_that_holds_a_version_twice_is_repaired_by_the_next_delivery(
    tables, layout, landing
) -> None:
    """Written by a version before ties were collapsed: the next change of such a key must
    merge, and leave one row per version."""
    customer_history(tables, layout, landing, [0, 1])
    history = TableName("silver", "sales_customers_history")
    doubled = tables.read(history).where("customer_id = 1").toPandas()
    tables.append(history, tables.spark.createDataFrame(doubled))  # every version of customer 1 twice
    assert tables.read(history).where("customer_id = 1").count() == 2 * len(doubled) > 0

    rows = customer_history(tables, layout, landing, [2, 3])

    versions = [(r[0], r[4]) for r in rows]
    assert len(versions) == len(set(versions)), "one row per version"
    changes = changes_of(*CUSTOMER_STREAM)
    for change in changes:
        change["dms_commit_ts"] = datetime.fromisoformat(change["dms_commit_ts"])
        change["customer_id"] = int(change["customer_id"])
    expected = apply_changes_scd2(
        changes,
        ("customer_id",),
        ("dms_commit_ts", "_file", "_row"),
        ("email", "street", "city", "country"),
        "dms_commit_ts",
    )
    assert rows == sorted(
        (v["customer_id"], v["email"], v["city"], v["phone"], v["__START_AT"], v["__END_AT"])
        for v in expected
    )
