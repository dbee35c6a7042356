"""Daily sales from DMS changes: an order without a currency is counted under ``unknown``, so the
table's key is never null and its primary-key check (which blocks serving) passes."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from pyspark.sql import functions as F

from lakehouse_dagster.domains.sales.tables import ORDER_ITEM_FACTS, SALES_ORDER_ITEMS
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.units.request import PartitionWindow
from lakehouse_dagster_tests.test_cdc_apply import dms_file, order, ts
from lakehouse_dagster_tests.units import run_table

NOVEMBER_FIRST = PartitionWindow(date(2026, 11, 1), date(2026, 11, 2))


PRODUCTS = [{"product_id": 7, "sku": "T-7", "name": "Toy", "category": "toys", "price": "1.00",
             "currency": "USD", "updated_at": "2026-10-01 00:00:00", "dms_commit_ts": ts(1)}]  # fmt: skip


def land_sales(tables, landing, orders: list[dict]) -> list[dict]:
    """Products, ``orders`` and one line each, through bronze into silver; the lines."""
    items = [
        {"order_id": o["order_id"], "line_number": 1, "product_id": 7, "quantity": o["order_id"],
         "unit_price": "2.50", "updated_at": "2026-11-01 08:00:00", "dms_commit_ts": ts(1)}
        for o in orders
    ]  # fmt: skip
    for table, rows in (("products", PRODUCTS), ("orders", orders), ("order_items", items)):
        dms_file(landing, table, "LOAD00000001.csv", rows, full_load=True)
        run_table(tables, f"bronze.sales_{table}")
        run_table(tables, f"silver.sales_{table}")
    return items


def test_an_order_without_a_currency_is_sold_under_unknown_and_the_key_holds(tables, landing) -> None:
    orders = [
        {**order(1, "paid", 1), "currency": None, "dms_commit_ts": ts(1)},
        {**order(2, "paid", 1), "dms_commit_ts": ts(1)},
        {**order(3, "placed", 1), "currency": "", "dms_commit_ts": ts(1)},
    ]
    items = land_sales(tables, landing, orders)
    for facts in ("silver.sales_order_facts", "silver.sales_order_item_facts"):
        run_table(tables, facts, partition=NOVEMBER_FIRST)
    result = run_table(tables, "gold.daily_sales", partition=NOVEMBER_FIRST)

    expected: dict[str, Decimal] = defaultdict(Decimal)
    for item in items:
        currency = next(o["currency"] for o in orders if o["order_id"] == item["order_id"]) or "unknown"
        expected[currency] += item["quantity"] * Decimal(item["unit_price"])
    built = {
        row["currency"]: row["revenue"] for row in tables.read(TableName("gold", "daily_sales")).collect()
    }
    assert built == expected == {"unknown": Decimal("10.00"), "USD": Decimal("5.00")}
    checks = {check.name: check for check in result.checks}
    assert checks["primary_key"].passed
    assert not checks["order_currency_present"].passed, "the unknown currency is warned about"


def test_facts_written_are_the_rows_judged_when_cdc_commits_in_between(tables, landing, monkeypatch) -> None:
    """A CDC merge into silver commits between the facts' expectations and their write: the
    facts hold the lines as they were judged, and each day's counts agree."""
    land_sales(tables, landing, [{**order(n, "paid", 1), "dms_commit_ts": ts(1)} for n in (1, 2, 3)])
    lines = tables.read(SALES_ORDER_ITEMS)
    judged = lines.count()
    write = DeltaTables.replace_window

    def commit_first(self, name, frame, window, **options):
        if name == ORDER_ITEM_FACTS:  # another run's merge lands a new line of order 2 now
            self.append(SALES_ORDER_ITEMS, lines.where("order_id = 2").withColumn("line_number", F.lit(2)))
        return write(self, name, frame, window, **options)

    monkeypatch.setattr(DeltaTables, "replace_window", commit_first)
    result = run_table(tables, "silver.sales_order_item_facts", partition=NOVEMBER_FIRST)

    assert result.error is None
    assert tables.read(SALES_ORDER_ITEMS).count() == judged + 1, "the merge landed"
    assert tables.read(ORDER_ITEM_FACTS).count() == judged
    day = result.partitions[NOVEMBER_FIRST.start.isoformat()]
    assert day["dagster/row_count"] == day["lakehouse/rows_evaluated"] == judged
