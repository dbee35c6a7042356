"""Edge cases of the sales domain found in review: deletes judged by domain rules, an order without
a time, and two gold columns whose documented rule the code did not follow.

Every expectation is computed here in plain Python over the rows landed, never with the project's
transforms or expectations.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster.units.request import PartitionWindow
from lakehouse_dagster_tests.test_cdc_apply import customer, dms_file, order, ts
from lakehouse_dagster_tests.units import run_table

ORDERS = TableName("silver", "sales_orders")
ORDER_ITEMS = TableName("silver", "sales_order_items")
HISTORY = TableName("silver", "sales_customers_history")
NOVEMBER = PartitionWindow(date(2026, 11, 1), date(2026, 12, 1))
#: The README's reference rates (USD per unit), written again: a currency not here has none.
USD_PER_UNIT = {"USD": Decimal("1"), "EUR": Decimal("1.087"), "GBP": Decimal("1.266")}
KNOWN_STATUSES = {"placed", "paid", "shipped", "delivered", "cancelled"}


def seq(day: int, number: int) -> str:
    return f"202611{day:02d}090000{number:019d}"


def item(order_id: int, quantity: object, price: str = "9.50", line: int = 1, product: int = 7) -> dict:
    return {
        "order_id": order_id,
        "line_number": line,
        "product_id": product,
        "quantity": quantity,
        "unit_price": price,
        "updated_at": "2026-11-01 08:00:00",
    }


def product(product_id: int, category: str = "toys") -> dict:
    return {
        "product_id": product_id,
        "sku": f"S-{product_id}",
        "name": f"P{product_id}",
        "category": category,
        "price": "1.00",
        "currency": "USD",
        "updated_at": "2026-10-01 00:00:00",
        "dms_commit_ts": ts(1),
    }


def apply(tables, landing, table: str, files: list[tuple[str, list[dict]]], *targets: str) -> None:
    for name, rows in files:
        dms_file(landing, table, name, rows, full_load=name.startswith("LOAD"))
    run_table(tables, f"bronze.sales_{table}")
    for target in targets or (f"silver.sales_{table}",):
        run_table(tables, target)


def replay(files: list[tuple[str, list[dict]]], keys: tuple[str, ...], applicable) -> dict[tuple, dict]:
    """The source's state: changes in (dms_commit_ts, AR_H_CHANGE_SEQ, file, line) order; a delete
    removes its key whatever its before-image holds, another change applies if ``applicable``."""
    changes = [
        (row["dms_commit_ts"], row.get("AR_H_CHANGE_SEQ") or "", name, line, row)
        for name, rows in files
        for line, row in enumerate(rows)
    ]
    state: dict[tuple, dict] = {}
    for *_, row in sorted(changes, key=lambda change: change[:4]):
        key = tuple(int(row[k]) for k in keys)
        if row.get("Op") == "D":
            state.pop(key, None)
        elif applicable(row):
            state[key] = row
    return state


# C2: a delete is applied whatever its before-image holds ---------------------------------------


def test_a_delete_whose_before_image_fails_a_domain_rule_or_a_type_still_deletes(tables, landing) -> None:
    """The source puts order 1 on hold (a status the domain drops) and deletes it; sets line (1, 1)
    to quantity 0 (dropped) and deletes it; deletes line (2, 1) with a quantity that is no number
    (rescued). The updates are kept out; the deletes are applied, as in the source."""
    order_files = [
        ("LOAD00000001.csv", [{**order(i, "placed", 1), "dms_commit_ts": ts(1)} for i in (1, 2, 3)]),
        (
            "20261102-0900000000.csv",
            [
                {**order(1, "on_hold", 1), "Op": "U", "dms_commit_ts": ts(2), "AR_H_CHANGE_SEQ": seq(2, 1)},
                {**order(1, "on_hold", 1), "Op": "D", "dms_commit_ts": ts(3), "AR_H_CHANGE_SEQ": seq(3, 2)},
            ],
        ),
    ]
    item_files = [
        ("LOAD00000001.csv", [{**item(i, 2), "dms_commit_ts": ts(1)} for i in (1, 2, 3)]),
        (
            "20261102-0900000000.csv",
            [
                {**item(1, 0), "Op": "U", "dms_commit_ts": ts(2), "AR_H_CHANGE_SEQ": seq(2, 1)},
                {**item(1, 0), "Op": "D", "dms_commit_ts": ts(3), "AR_H_CHANGE_SEQ": seq(3, 2)},
                {**item(2, "two"), "Op": "D", "dms_commit_ts": ts(3), "AR_H_CHANGE_SEQ": seq(3, 3)},
            ],
        ),
    ]
    apply(tables, landing, "orders", order_files)
    apply(tables, landing, "order_items", item_files)

    expected_orders = replay(order_files, ("order_id",), lambda row: row["status"] in KNOWN_STATUSES)
    expected_items = replay(item_files, ("order_id", "line_number"), lambda row: int(row["quantity"]) > 0)
    orders = {(r["order_id"],): r["status"] for r in tables.read(ORDERS).collect()}
    items = {(r["order_id"], r["line_number"]): r["quantity"] for r in tables.read(ORDER_ITEMS).collect()}
    assert (
        orders
        == {key: row["status"] for key, row in expected_orders.items()}
        == {(2,): "placed", (3,): "placed"}
    )
    assert items == {key: row["quantity"] for key, row in expected_items.items()} == {(3, 1): 2}
    quarantined = [(r["Op"], r["status"]) for r in tables.read(quarantine_table(ORDERS)).collect()]
    assert quarantined == [("U", "on_hold")], "the update is kept out, not the delete"
    assert [r["Op"] for r in tables.read(quarantine_table(ORDER_ITEMS)).collect()] == ["U"]


def test_scd2_ends_a_version_at_a_delete_with_a_rescued_value(tables, landing) -> None:
    """A customer's delete whose before-image holds an ``updated_at`` that is no time: the
    version still ends at the delete (only the key and sequence are needed)."""
    files = [
        ("LOAD00000001.csv", [{**customer(1, "a@x.com", "Oslo", "1"), "dms_commit_ts": ts(1)}]),
        (
            "20261102-0900000000.csv",
            [
                {
                    **customer(1, "a@x.com", "Oslo", "1"),
                    "updated_at": "yesterday",
                    "Op": "D",
                    "dms_commit_ts": ts(2),
                    "AR_H_CHANGE_SEQ": seq(2, 1),
                }
            ],
        ),
    ]
    apply(tables, landing, "customers", files, "silver.sales_customers", "silver.sales_customers_history")

    assert replay(files, ("customer_id",), lambda row: True) == {}
    assert tables.read(TableName("silver", "sales_customers")).count() == 0
    (version,) = tables.read(HISTORY).collect()
    assert version["__END_AT"] is not None
    assert version["__END_AT"]["dms_commit_ts"] == datetime.fromisoformat(ts(2))
    assert not tables.exists(quarantine_table(HISTORY)) or tables.read(quarantine_table(HISTORY)).count() == 0


def test_a_change_redelivered_without_the_change_sequence_is_no_version_of_its_own(tables, landing) -> None:
    """One transaction changes the e-mail, then the city; the second change comes again in a file
    without ``AR_H_CHANGE_SEQ`` (null there). The source had three versions, not four."""
    load = {**customer(1, "a@x.com", "Oslo", "1"), "dms_commit_ts": ts(1)}
    email = {
        **customer(1, "b@x.com", "Oslo", "1"),
        "Op": "U",
        "dms_commit_ts": ts(2),
        "AR_H_CHANGE_SEQ": seq(2, 1),
    }
    city = {**email, "city": "Lima", "AR_H_CHANGE_SEQ": seq(2, 2)}
    dms_file(landing, "customers", "LOAD00000001.csv", [load], full_load=True)
    dms_file(landing, "customers", "20261102-0900000000.csv", [email, city])
    headerless = (
        "Op",
        "dms_commit_ts",
        *(c for c in city if c not in ("Op", "dms_commit_ts", "AR_H_CHANGE_SEQ")),
    )
    dms_file(landing, "customers", "20261102-0900000001.csv", [city], columns=headerless)
    run_table(tables, "bronze.sales_customers")
    run_table(tables, "silver.sales_customers_history")

    versions = sorted(
        [
            (
                r["email"],
                r["city"],
                r["__START_AT"]["AR_H_CHANGE_SEQ"],
                r["__END_AT"] and r["__END_AT"]["AR_H_CHANGE_SEQ"],
            )
            for r in tables.read(HISTORY).collect()
        ],
        key=repr,
    )
    assert versions == sorted(
        [
            ("a@x.com", "Oslo", None, email["AR_H_CHANGE_SEQ"]),
            ("b@x.com", "Oslo", email["AR_H_CHANGE_SEQ"], city["AR_H_CHANGE_SEQ"]),
            ("b@x.com", "Lima", city["AR_H_CHANGE_SEQ"], None),
        ],
        key=repr,
    )


# Q1: an order without a time is kept out of silver, counted, and in no gold table --------------


def test_an_order_without_a_time_is_quarantined_and_every_gold_table_agrees(tables, landing) -> None:
    """Order 2 has no ``order_ts``: no order date holds it, so it is kept out of silver (and
    counted) rather than silently missing from the facts and daily sales while the customer and
    product marts count it. Order 3 loses its time in an update (kept out: the order keeps its
    time), then is deleted with that before-image (applied: a delete is never judged)."""
    orders = [
        {**order(1, "paid", 1), "dms_commit_ts": ts(1)},
        {**order(2, "paid", 1), "order_ts": None, "dms_commit_ts": ts(1)},
        {**order(3, "paid", 1), "dms_commit_ts": ts(1)},
        {**order(4, "paid", 2), "dms_commit_ts": ts(1)},
    ]
    gone = {**order(3, "paid", 1), "order_ts": None}
    later = [
        {**gone, "Op": "U", "dms_commit_ts": ts(2), "AR_H_CHANGE_SEQ": seq(2, 1)},
        {**gone, "Op": "D", "dms_commit_ts": ts(3), "AR_H_CHANGE_SEQ": seq(3, 2)},
    ]
    order_files = [("LOAD00000001.csv", orders), ("20261102-0900000000.csv", later)]
    items = [{**item(o, 1 + o, "3.00"), "dms_commit_ts": ts(1)} for o in (1, 2, 3, 4)]
    buyer = {**customer(1, "a@x.com", "Oslo", "1"), "dms_commit_ts": ts(1)}
    apply(tables, landing, "customers", [("LOAD00000001.csv", [buyer])])
    apply(tables, landing, "products", [("LOAD00000001.csv", [product(7)])])
    apply(tables, landing, "orders", order_files)
    dms_file(landing, "order_items", "LOAD00000001.csv", items, full_load=True)
    run_table(tables, "bronze.sales_order_items")
    items_result = run_table(tables, "silver.sales_order_items")
    for facts in ("silver.sales_order_facts", "silver.sales_order_item_facts", "gold.daily_sales"):
        run_table(tables, facts, partition=NOVEMBER)
    run_table(tables, "gold.customer_360")
    run_table(tables, "gold.product_performance")

    # Independently: the source's orders that have a time, and the revenue of their lines.
    state = replay(order_files, ("order_id",), lambda row: row["order_ts"] is not None)
    placed = {key[0] for key in state}
    revenue = sum(
        (item["quantity"] * Decimal(item["unit_price"]) for item in items if item["order_id"] in placed),
        Decimal(0),
    )
    assert placed == {1, 4} and revenue == Decimal("21.00")

    assert {r["order_id"] for r in tables.read(ORDERS).collect()} == placed
    quarantined = {
        (r["order_id"], r["Op"]): sorted(r["_failed_expectations"])
        for r in tables.read(quarantine_table(ORDERS)).collect()
    }
    assert quarantined == {(2, None): ["order_time_present"], (3, "U"): ["order_time_present"]}
    (orphans,) = [c for c in items_result.checks if c.name == "order_exists"]
    assert orphans.metadata["orphans"] == 2, "the lines of orders 2 and 3 are counted, not applied anywhere"

    def total(table: str, column: str) -> Decimal:
        return sum((r[column] for r in tables.read(TableName.parse(table)).collect()), Decimal(0))

    assert total("gold.daily_sales", "revenue") == revenue
    assert total("gold.customer_360", "lifetime_revenue_usd") == revenue
    assert total("gold.product_performance", "revenue_usd") == revenue
    assert total("gold.daily_sales", "orders") == total("gold.customer_360", "order_count") == len(placed)
    assert {r["order_id"] for r in tables.read(TableName("silver", "sales_order_facts")).collect()} == placed


# Q3, Q4: two gold columns as documented -------------------------------------------------------


def land_gold_inputs(tables, landing) -> tuple[list[dict], list[dict]]:
    """Customer 1: a paid and a cancelled order of product 7; customer 2: one order in JPY (no
    reference rate); customer 3: one in JPY, one in EUR (product 8). The orders and lines."""
    customers = [{**customer(c, f"c{c}@x.com", "Oslo", "1"), "dms_commit_ts": ts(1)} for c in (1, 2, 3)]
    orders = [
        {**order(1, "paid", 1, customer=1), "dms_commit_ts": ts(1)},
        {**order(2, "cancelled", 1, customer=1), "dms_commit_ts": ts(1)},
        {**order(3, "paid", 1, customer=2), "currency": "JPY", "dms_commit_ts": ts(1)},
        {**order(4, "paid", 1, customer=3), "currency": "JPY", "dms_commit_ts": ts(1)},
        {**order(5, "paid", 1, customer=3), "currency": "EUR", "dms_commit_ts": ts(1)},
    ]
    items = [
        {**item(1, 2, "3.00"), "dms_commit_ts": ts(1)},
        {**item(2, 5, "3.00"), "dms_commit_ts": ts(1)},
        {**item(3, 1, "100.00", product=8), "dms_commit_ts": ts(1)},
        {**item(4, 1, "100.00", product=8), "dms_commit_ts": ts(1)},
        {**item(5, 1, "10.00", product=8), "dms_commit_ts": ts(1)},
    ]
    for table, rows in (
        ("customers", customers),
        ("products", [product(7), product(8)]),
        ("orders", orders),
        ("order_items", items),
    ):
        apply(tables, landing, table, [("LOAD00000001.csv", rows)])
    return orders, items


def test_product_orders_count_every_order_with_a_line_cancelled_ones_included(tables, landing) -> None:
    """``product_performance.orders``: its column doc's rule, as ``daily_sales.orders`` counts."""
    orders, items = land_gold_inputs(tables, landing)
    run_table(tables, "gold.product_performance")

    assert any(o["status"] == "cancelled" for o in orders)
    expected = {p: len({i["order_id"] for i in items if i["product_id"] == p}) for p in (7, 8)}
    built = {
        r["product_id"]: r["orders"] for r in tables.read(TableName("gold", "product_performance")).collect()
    }
    assert built == expected == {7: 2, 8: 3}


def test_orders_in_a_currency_without_a_rate_average_to_zero_not_null(tables, landing) -> None:
    """An order in a currency without a reference rate counts as an order but adds no USD
    revenue (README): a customer whose orders are all in one averages 0.00, not null; with an
    EUR order too, the EUR revenue is divided by both orders."""
    orders, items = land_gold_inputs(tables, landing)
    run_table(tables, "gold.customer_360")

    status = {o["order_id"]: o["status"] for o in orders}
    currency = {o["order_id"]: o["currency"] for o in orders}
    expected = {}
    for c in (1, 2, 3):
        kept = [
            o["order_id"] for o in orders if o["customer_id"] == c and status[o["order_id"]] != "cancelled"
        ]
        usd = sum(
            (
                i["quantity"]
                * Decimal(i["unit_price"])
                * USD_PER_UNIT.get(currency[i["order_id"]], Decimal(0))
                for i in items
                if i["order_id"] in kept
            ),
            Decimal(0),
        )
        expected[c] = (usd / len(kept)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    built = {
        r["customer_id"]: r["average_order_value_usd"]
        for r in tables.read(TableName("gold", "customer_360")).collect()
    }
    assert built == expected
    assert built[2] == Decimal("0.00") and built[3] == Decimal("5.44")


def test_a_product_moved_to_another_category_touches_the_days_of_its_lines(tables, landing) -> None:
    """Daily sales group a day's lines by their product's current category: a category change
    reports the days of the product's lines (the sensor rebuilds them); a price change does not."""
    orders, items = land_gold_inputs(tables, landing)
    run_table(tables, "silver.sales_products")
    for built in ("silver.sales_order_facts", "silver.sales_order_item_facts", "gold.daily_sales"):
        run_table(tables, built, partition=NOVEMBER)
    repriced = {**product(7), "price": "2.00", "Op": "U", "dms_commit_ts": ts(2)}
    dms_file(landing, "products", "20261102-090000000.csv", [repriced])
    run_table(tables, "bronze.sales_products")
    assert run_table(tables, "silver.sales_products").metadata["lakehouse/touched_dates"] == []

    moved = {**product(8, "games"), "Op": "U", "dms_commit_ts": ts(3)}
    dms_file(landing, "products", "20261103-090000000.csv", [moved])
    run_table(tables, "bronze.sales_products")
    applied = run_table(tables, "silver.sales_products")

    placed_on = {o["order_id"]: o["order_ts"][:10] for o in orders}
    expected = sorted({placed_on[i["order_id"]] for i in items if i["product_id"] == moved["product_id"]})
    assert applied.metadata["lakehouse/touched_dates"] == expected == ["2026-11-01"]
    run_table(tables, "gold.daily_sales", partition=NOVEMBER)  # what the sensor's run rebuilds
    categories = {r["category"] for r in tables.read(TableName("gold", "daily_sales")).collect()}
    assert categories == {"toys", "games"}


def test_a_category_move_first_seen_in_a_dropped_change_is_reported_when_applied(tables, landing) -> None:
    """A move to "games" first comes with a negative price (dropped, never applied): silver moves
    when a valid change brings "games" again, and that change reports the product's days."""
    orders, items = land_gold_inputs(tables, landing)
    run_table(tables, "silver.sales_products")
    run_table(tables, "silver.sales_order_item_facts", partition=NOVEMBER)
    dropped = {**product(8, "games"), "price": "-1.00", "Op": "U", "dms_commit_ts": ts(2)}
    valid = {**product(8, "games"), "Op": "U", "dms_commit_ts": ts(3)}
    touched = []
    for day, change in ((2, dropped), (3, valid)):
        dms_file(landing, "products", f"202611{day:02d}-090000000.csv", [change])
        run_table(tables, "bronze.sales_products")
        touched.append(run_table(tables, "silver.sales_products").metadata["lakehouse/touched_dates"])

    placed_on = {o["order_id"]: o["order_ts"][:10] for o in orders}
    days_of_8 = sorted({placed_on[i["order_id"]] for i in items if i["product_id"] == 8})
    assert touched == [[], days_of_8]


def test_a_product_deleted_then_inserted_again_reports_its_days_both_times(tables, landing) -> None:
    """Deleted, its lines fall under "unknown"; back with its old category, they leave it again."""
    orders, items = land_gold_inputs(tables, landing)
    run_table(tables, "silver.sales_products")
    run_table(tables, "silver.sales_order_item_facts", partition=NOVEMBER)
    touched = []
    for day, op in ((2, "D"), (3, "I")):
        dms_file(
            landing,
            "products",
            f"202611{day:02d}-090000000.csv",
            [{**product(8), "Op": op, "dms_commit_ts": ts(day)}],
        )
        run_table(tables, "bronze.sales_products")
        touched.append(run_table(tables, "silver.sales_products").metadata["lakehouse/touched_dates"])

    placed_on = {o["order_id"]: o["order_ts"][:10] for o in orders}
    days_of_8 = sorted({placed_on[i["order_id"]] for i in items if i["product_id"] == 8})
    assert touched == [days_of_8, days_of_8]
