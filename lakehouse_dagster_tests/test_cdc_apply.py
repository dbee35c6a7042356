"""Applying DMS changes to silver with MERGE: SCD1 and SCD2 against the change-at-a-time oracle.

DMS files carry ``AR_H_CHANGE_SEQ`` last (empty in full-load rows); the sales tables order a key's
changes by (dms_commit_ts, AR_H_CHANGE_SEQ), then by position.
"""

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
from lakehouse_dagster.units.request import PartitionWindow
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
    columns = columns or (
        *(("dms_commit_ts",) if full_load else ("Op", "dms_commit_ts")),
        *SOURCE_COLUMNS[table],
        "AR_H_CHANGE_SEQ",
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


@pytest.mark.parametrize("together", [False, True], ids=["copy in a later run", "copy in the same run"])
def test_a_file_landed_again_under_another_name_does_not_undo_the_changes_it_ties_with(
    tables, landing, layout, together
) -> None:
    """Without DMS's change number, changes of one key at one commit time are ordered by file
    and line. The copy of the first, landed again under a name that sorts last, is not a change."""
    placed = [{**order(1, "placed", 1), "Op": "I", "dms_commit_ts": ts(1)}]
    shipped = [{**order(1, "shipped", 1), "Op": "U", "dms_commit_ts": ts(1)}]
    dms_file(landing, "orders", "20261101-0900000000.csv", placed)
    dms_file(landing, "orders", "20261101-0900000001.csv", shipped)
    if not together:
        apply_orders(tables, layout)
        assert silver_orders(tables) == {1: "shipped"}

    dms_file(landing, "orders", "20261101-0900000002.csv", placed)  # the first file, again
    apply_orders(tables, layout)

    everything = changes_of(("20261101-0", placed), ("20261101-1", shipped), ("20261101-2", placed))
    assert silver_orders(tables) == expected_orders(everything) == {1: "shipped"}


def test_order_lines_applied_before_any_order_landed_touch_no_day_until_their_order_does(
    tables, landing, layout
) -> None:
    line = {"order_id": 1, "line_number": 1, "product_id": 7, "quantity": 2, "unit_price": "9.50",
            "updated_at": "2026-11-03 08:00:00", "Op": "I", "dms_commit_ts": ts(3)}  # fmt: skip
    dms_file(landing, "order_items", "20261103-0900000000.csv", [line])

    items = run(tables, layout, "bronze.sales_order_items", "silver.sales_order_items")[
        "silver.sales_order_items"
    ]

    assert items["lakehouse/touched_dates"] == []
    assert tables.read(TableName("silver", "sales_order_items")).count() == 1
    dms_file(
        landing,
        "orders",
        "20261103-0900000000.csv",
        [{**order(1, "placed", 3), "Op": "I", "dms_commit_ts": ts(3)}],
    )
    assert apply_orders(tables, layout)["lakehouse/touched_dates"] == ["2026-11-03"]


def test_an_order_moved_to_another_day_is_rebuilt_on_both_days_and_counted_once(
    tables, landing, layout
) -> None:
    """A DMS update carries the new ``order_ts`` only: the day the order leaves is touched too,
    so refreshing the touched days (as the partition sensor does) leaves it in one day's facts."""
    facts = "silver.sales_order_facts"
    load = [{**order(i, "placed", day), "dms_commit_ts": ts(day)} for i, day in ((1, 1), (2, 2))]
    items = [
        {"order_id": i, "line_number": 1, "product_id": 7, "quantity": 1, "unit_price": "9.50",
         "updated_at": "2026-11-02 08:00:00", "dms_commit_ts": ts(2)}
        for i in (1, 2)
    ]  # fmt: skip
    dms_file(landing, "orders", "LOAD00000001.csv", load, full_load=True)
    dms_file(landing, "order_items", "LOAD00000001.csv", items, full_load=True)
    apply_orders(tables, layout)
    run(tables, layout, "bronze.sales_order_items", "silver.sales_order_items")
    run_table(tables, facts, partition=PartitionWindow(date(2026, 11, 1), date(2026, 11, 11)))

    moved = {**order(1, "paid", 5), "Op": "U", "dms_commit_ts": ts(6)}  # placed on the 5th, not the 1st
    dms_file(landing, "orders", "20261106-0900000000.csv", [moved])
    touched = apply_orders(tables, layout)["lakehouse/touched_dates"]
    assert touched == ["2026-11-01", "2026-11-05"]
    for day in map(date.fromisoformat, touched):
        run_table(tables, facts, partition=PartitionWindow(day, date(2026, 11, day.day + 1)))

    silver_days = {row["order_id"]: row["order_ts"].date() for row in tables.read(ORDERS).collect()}
    fact_days = [
        (row["order_id"], row["order_date"]) for row in tables.read(TableName.parse(facts)).collect()
    ]
    assert (
        sorted(fact_days) == sorted(silver_days.items()) == [(1, date(2026, 11, 5)), (2, date(2026, 11, 2))]
    )


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
            {**order(1, "cancelled", 1), "Op": None, "dms_commit_ts": ts(4)},  # only full loads have none
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
        ["operation_present"],
    ]
    assert metadata["lakehouse/rows_quarantined"] == 4
    assert all(r["_run_id"] == "test" for r in quarantined)

    run(tables, layout, "silver.sales_orders")  # nothing new: the quarantine does not grow
    tables.overwrite(progress_table(ORDERS), tables.read(progress_table(ORDERS)).limit(0))
    run(tables, layout, "silver.sales_orders")  # the same batch again: still no duplicates
    assert tables.read(quarantine_table(ORDERS)).count() == 4


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


CUSTOMERS = TableName("silver", "sales_customers")
HISTORY = TableName("silver", "sales_customers_history")
SEQUENCE = ("dms_commit_ts", "AR_H_CHANGE_SEQ")
TRACKED = ("email", "street", "city", "country")


def as_tuple(at) -> tuple | None:
    """A struct ``__START_AT`` / ``__END_AT`` as the oracle's tuple."""
    return None if at is None else (at["dms_commit_ts"], at["AR_H_CHANGE_SEQ"])


def versions(tables) -> list[tuple]:
    return sorted(
        (
            r["customer_id"],
            r["email"],
            r["city"],
            r["phone"],
            as_tuple(r["__START_AT"]),
            as_tuple(r["__END_AT"]),
        )
        for r in tables.read(HISTORY).collect()
    )


def typed(changes: list[dict]) -> list[dict]:
    """The oracle's changes, typed as the lake types them (an empty field is null)."""
    return [
        {
            **c,
            "customer_id": int(c["customer_id"]),
            "dms_commit_ts": datetime.fromisoformat(c["dms_commit_ts"]),
            "AR_H_CHANGE_SEQ": c.get("AR_H_CHANGE_SEQ") or None,
        }
        for c in changes
    ]


def expected_versions(stream: list[tuple[str, list[dict]]]) -> list[tuple]:
    changes = typed(changes_of(*stream))
    expected = apply_changes_scd2(changes, ("customer_id",), (*SEQUENCE, "_file", "_row"), TRACKED, SEQUENCE)
    return sorted(
        (v["customer_id"], v["email"], v["city"], v["phone"], v["__START_AT"], v["__END_AT"])
        for v in expected
    )


def customer_history(tables, layout, landing, delivery: list[int]) -> list[tuple]:
    for index in delivery:
        name, rows = CUSTOMER_STREAM[index]
        dms_file(landing, "customers", name, rows, full_load=name.startswith("LOAD"))
        run(tables, layout, "bronze.sales_customers", "silver.sales_customers_history")
    return versions(tables)


@pytest.mark.parametrize("delivery", [[0, 1, 2, 3], [0, 3, 2, 1], [0, 2, 3, 1]])
def test_history_is_the_same_whatever_the_delivery_order(tables, layout, landing, delivery) -> None:
    """Files without AR_H_CHANGE_SEQ (a task without the header rule): the commit time orders."""
    history = customer_history(tables, layout, landing, delivery)

    assert history == expected_versions(CUSTOMER_STREAM)
    assert len(history) == 5 and date(2026, 11, 3) in {row[4][0].date() for row in history}


# Transactions that touch a key twice ----------------------------------------------------------


def change(customer_id: int, email: str, city: str, phone: str, at: str, number: int | None) -> dict:
    """A customer's ``U`` committed at ``at`` with DMS's change number ``number``; with None, its
    full-load row (no Op, no AR_H_CHANGE_SEQ)."""
    row = {**customer(customer_id, email, city, phone), "dms_commit_ts": at}
    if number is None:
        return row
    hundredths = at.replace("-", "").replace(" ", "").replace(":", "").replace(".", "")[:16]
    return {**row, "Op": "U", "AR_H_CHANGE_SEQ": f"{hundredths}{number:019d}"}


TWICE_STREAM = [
    (
        "LOAD00000001.csv",
        [change(1, "a@x", "Oslo", "1", ts(1), None), change(2, "b@x", "Lima", "1", ts(1), None)],
    ),
    ("20261101-0900000000.csv", [change(1, "a@x", "Oslo", "2", ts(1, 12), 1)]),
    (
        "20261102-0900000000.csv",
        [
            change(1, "a2@x", "Oslo", "1", ts(2), 2),  # one transaction: an e-mail change,
            change(1, "a2@x", "Bergen", "1", ts(2), 3),  # then a move
            change(2, "b2@x", "Lima", "1", ts(2, 10), 4),  # its move is in the next file
        ],
    ),
    (
        "20261102-1200000000.csv",
        [
            change(2, "b2@x", "Madrid", "1", ts(2, 10), 5),
            change(1, "a2@x", "Oslo", "1", ts(2), 2),  # 1's first change again, in a later file
        ],
    ),
    ("20261103-0900000000.csv", [change(2, "b2@x", "Lima", "1", ts(2, 10), 4)]),  # 2's first, again
    (
        "20261104-0900000000.csv",  # the next delivery for both keys
        [change(1, "a2@x", "Bergen", "9", ts(4), 6), change(2, "b3@x", "Madrid", "1", ts(4), 7)],
    ),
]


def primary_key_holds(result) -> bool:
    (check,) = [c for c in result.checks if c.name == "primary_key"]
    return check.passed


def customers_state(tables) -> dict[int, tuple]:
    return {r["customer_id"]: (r["email"], r["city"], r["phone"]) for r in tables.read(CUSTOMERS).collect()}


def expected_customers_state(stream: list[tuple[str, list[dict]]]) -> dict[int, tuple]:
    state = apply_changes_scd1(typed(changes_of(*stream)), ("customer_id",), (*SEQUENCE, "_file", "_row"))
    return {key[0]: (c["email"], c["city"], c["phone"]) for key, c in state.items()}


@pytest.mark.parametrize("waves", [[[0, 1, 2], [3, 4], [5]], [[0, 3, 4], [1, 2], [5]]])
def test_a_key_changed_twice_in_one_transaction_ends_in_the_true_state_and_keeps_merging(
    tables, layout, landing, waves
) -> None:
    """Two changes of a key with one dms_commit_ts, in one file and across files, the first one
    delivered again in a later file; then the next delivery for the keys. The files come in waves,
    a run after each (in the second order, the copies first). After every run, SCD1 and SCD2 match
    the oracle over the files delivered so far and the primary key holds."""
    delivered = []
    for wave in waves:
        delivered += [TWICE_STREAM[index] for index in wave]
        for name, rows in (TWICE_STREAM[index] for index in wave):
            dms_file(landing, "customers", name, rows, full_load=name.startswith("LOAD"))
        run_table(tables, "bronze.sales_customers")
        for table in (CUSTOMERS, HISTORY):
            result = run_table(tables, str(table))
            assert primary_key_holds(result), (wave, table)
            assert result.metadata.get("lakehouse/rows_quarantined", 0) == 0, "full-load rows apply"
        assert customers_state(tables) == expected_customers_state(delivered), wave
        assert versions(tables) == expected_versions(delivered), wave

    state, history = customers_state(tables), versions(tables)
    assert state[1] == ("a2@x", "Bergen", "9") and state[2] == ("b3@x", "Madrid", "1")
    within_one_commit = [v for v in history if v[5] is not None and v[4][0] == v[5][0]]
    assert len(within_one_commit) == 2, "for 1 and 2: the e-mail change, before the move"
    assert len({(v[0], v[4]) for v in history}) == len(history) == 7


def test_full_load_rows_without_change_sequence_apply_and_sort_first(tables, layout, landing) -> None:
    """A multi-column sequence whose later column is null in full-load rows: the rows are applied
    (only the first column is required), and a change committed at the same instant comes after
    them, although its file name sorts before LOAD00000001.csv."""
    load = [change(5, "e@x", "Oslo", "1", ts(1), None), change(6, "f@x", "Lima", "1", ts(1), None)]
    cdc = [change(5, "e2@x", "Oslo", "1", ts(1), 1)]
    dms_file(landing, "customers", "LOAD00000001.csv", load, full_load=True)
    dms_file(landing, "customers", "20261101-0900000000.csv", cdc)

    results = run(tables, layout, "bronze.sales_customers", str(CUSTOMERS), str(HISTORY))

    assert results[str(CUSTOMERS)].get("lakehouse/rows_quarantined", 0) == 0
    assert {r["customer_id"]: r["email"] for r in tables.read(CUSTOMERS).collect()} == {5: "e2@x", 6: "f@x"}
    committed = datetime.fromisoformat(ts(1))
    loaded, changed = (committed, None), (committed, cdc[0]["AR_H_CHANGE_SEQ"])
    assert [(v[0], v[1], v[4], v[5]) for v in versions(tables)] == sorted(
        [(5, "e@x", loaded, changed), (5, "e2@x", changed, None), (6, "f@x", loaded, None)]
    )


def test_a_history_that_holds_a_version_twice_is_repaired_by_the_next_delivery(
    tables, layout, landing
) -> None:
    """Written by a version before ties were collapsed: the next change of such a key must
    merge, and leave one row per version."""
    customer_history(tables, layout, landing, [0, 1])
    doubled = tables.read(HISTORY).where("customer_id = 1").toPandas()
    tables.append(HISTORY, tables.spark.createDataFrame(doubled))  # every version of customer 1 twice
    assert tables.read(HISTORY).where("customer_id = 1").count() == 2 * len(doubled) > 0

    rows = customer_history(tables, layout, landing, [2, 3])

    assert len({(r[0], r[4]) for r in rows}) == len(rows), "one row per version"
    assert rows == expected_versions(CUSTOMER_STREAM)


@pytest.mark.parametrize("first_build", [True, False])
def test_a_delivery_whose_every_change_is_quarantined_applies_nothing_and_fails_nothing(
    tables, layout, landing, first_build
) -> None:
    """Type 1 and type 2, on a first build (the tables are created empty, with their columns)
    and on a later one (the tables keep their rows)."""
    valid = [change(5, "e@x", "Oslo", "1", ts(1), None)]
    if not first_build:
        dms_file(landing, "customers", "LOAD00000001.csv", valid, full_load=True)
        run(tables, layout, "bronze.sales_customers", str(CUSTOMERS), str(HISTORY))
    bad = [{**change(5, "z@x", "Rome", "2", ts(2), 1), "Op": "X"}]
    dms_file(landing, "customers", "20261102-0900000000.csv", bad)

    results = run(tables, layout, "bronze.sales_customers", str(CUSTOMERS), str(HISTORY))

    for table in (CUSTOMERS, HISTORY):
        assert results[str(table)]["lakehouse/rows_quarantined"] == 1
        assert tables.read(quarantine_table(table)).count() == 1
        assert {c.name for c in tables.columns(table)} >= set(CUSTOMER_COLUMNS)
    expected = {} if first_build else {5: "e@x"}
    assert {r["customer_id"]: r["email"] for r in tables.read(CUSTOMERS).collect()} == expected
    assert [(v[0], v[1]) for v in versions(tables)] == sorted(expected.items())
