"""The sales marts computed with Python's ``decimal`` over the raw DMS files: no Spark, no pandas
arithmetic, and none of the project's transforms.

The rules are the README's money rules, written again here: exact decimals, one rounding to cents
at the end, half up; averages from the exact sum and the count; USD values from the exact amount
times the reference rate. Only the reference rates (declared data, not a result) come from the
project.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

from lakehouse_dagster.domains.sales.money import USD_PER_UNIT
from lakehouse_dagster_tests.dms_replay import replay_landing

CENT = Decimal("0.01")
CANCELLED = "cancelled"
UNKNOWN_CATEGORY = "unknown"
UNKNOWN_CURRENCY = "unknown"


def to_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def average(total: Decimal, count: int) -> Decimal:
    """``total / count`` to cents, half up. The quotient is first cut (not rounded) to 60 digits:
    a cut never moves a value below a half cent onto or above it, so the rounding stays exact."""
    with localcontext() as context:
        context.prec, context.rounding = 60, ROUND_DOWN
        quotient = total / count
    return to_cents(quotient)


@dataclass(frozen=True)
class Line:
    order_id: int
    product_id: int
    quantity: int
    amount: Decimal
    order_date: date
    currency: str
    cancelled: bool


class SalesOracle:
    """The current state of the sales tables replayed from the landed files, and the marts over it."""

    def __init__(self, landing: Path) -> None:
        state = replay_landing(landing)
        self.customers = state["customers"].to_dict("records")
        self.products = state["products"].to_dict("records")
        self.orders = {int(o["order_id"]): o for o in state["orders"].to_dict("records")}
        self.lines = [
            Line(
                order_id=int(item["order_id"]),
                product_id=int(item["product_id"]),
                quantity=int(item["quantity"]),
                amount=int(item["quantity"]) * Decimal(item["unit_price"]),
                order_date=date.fromisoformat(order["order_ts"][:10]),
                currency=order["currency"],
                cancelled=order["status"] == CANCELLED,
            )
            for item in state["order_items"].to_dict("records")
            if (order := self.orders.get(int(item["order_id"]))) is not None
        ]

    def order_dates(self) -> list[date]:
        return sorted({date.fromisoformat(o["order_ts"][:10]) for o in self.orders.values()})

    def daily_sales(self) -> list[dict]:
        category = {int(p["product_id"]): p["category"] or UNKNOWN_CATEGORY for p in self.products}
        groups: dict[tuple, list[Line]] = defaultdict(list)
        for line in self.lines:
            currency = line.currency or UNKNOWN_CURRENCY
            groups[(line.order_date, category.get(line.product_id, UNKNOWN_CATEGORY), currency)].append(line)
        rows = []
        for (day, name, currency), lines in groups.items():
            kept = [line for line in lines if not line.cancelled]
            orders = {line.order_id for line in lines}
            kept_orders = {line.order_id for line in kept}
            revenue = sum((line.amount for line in kept), Decimal("0.00"))
            rows.append(
                {
                    "order_date": day,
                    "category": name,
                    "currency": currency,
                    "orders": len(orders),
                    "units": sum(line.quantity for line in kept),
                    "revenue": revenue,
                    "average_order_value": average(revenue, len(kept_orders)) if kept_orders else None,
                    "cancelled_share": len({line.order_id for line in lines if line.cancelled}) / len(orders),
                }
            )
        return rows

    def _order_usd(self) -> dict[int, Decimal | None]:
        """Each order's exact amount in USD (None in a currency without a reference rate)."""
        amounts: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
        for line in self.lines:
            amounts[line.order_id] += line.amount
        return {
            order_id: amounts[order_id] * USD_PER_UNIT[o["currency"]]
            if o["currency"] in USD_PER_UNIT
            else None
            for order_id, o in self.orders.items()
        }

    def _orders_by_customer(self) -> dict[int, list[dict]]:
        usd = self._order_usd()
        by_customer: dict[int, list[dict]] = defaultdict(list)
        for order_id, order in self.orders.items():
            by_customer[int(order["customer_id"])].append({**order, "usd": usd[order_id]})
        return by_customer

    def customer_usd_totals(self) -> dict[int, tuple[Decimal, int]]:
        """Per customer: the exact USD revenue of the orders not cancelled, and how many they are.
        An order in a currency without a reference rate counts as an order but adds no revenue."""
        by_customer = self._orders_by_customer()
        totals = {}
        for customer in self.customers:
            kept = [o for o in by_customer.get(int(customer["customer_id"]), []) if o["status"] != CANCELLED]
            revenue = sum((o["usd"] for o in kept if o["usd"] is not None), Decimal(0))
            totals[int(customer["customer_id"])] = (revenue, len(kept))
        return totals

    def customer_360(self, as_of: date) -> list[dict]:
        by_customer = self._orders_by_customer()
        totals = self.customer_usd_totals()
        rows = []
        for customer in self.customers:
            customer_id = int(customer["customer_id"])
            orders = by_customer.get(customer_id, [])
            revenue, kept = totals[customer_id]
            dates = [date.fromisoformat(o["order_ts"][:10]) for o in orders]
            days = (as_of - max(dates)).days if dates else None
            rows.append(
                {
                    "customer_id": customer_id,
                    **{c: customer[c] for c in ("first_name", "last_name", "email", "country")},
                    "first_order_date": min(dates) if dates else None,
                    "last_order_date": max(dates) if dates else None,
                    "order_count": kept,
                    "cancelled_order_count": len(orders) - kept,
                    "lifetime_revenue_usd": to_cents(revenue),
                    "average_order_value_usd": average(revenue, kept) if kept else None,
                    "days_since_last_activity": days,
                    "customer_segment": segment(days),
                }
            )
        return rows

    def product_performance(self) -> list[dict]:
        sold: dict[int, dict] = defaultdict(lambda: {"orders": set(), "sold": 0, "cancelled": 0, "usd": None})
        for line in self.lines:
            product = sold[line.product_id]
            product["orders"].add(line.order_id)  # every order with a line of it, cancelled or not
            if line.cancelled:
                product["cancelled"] += line.quantity
                continue
            product["sold"] += line.quantity
            if line.currency in USD_PER_UNIT:
                product["usd"] = (product["usd"] or 0) + line.amount * USD_PER_UNIT[line.currency]
        rows = []
        for p in self.products:
            product = sold.get(
                int(p["product_id"]), {"orders": set(), "sold": 0, "cancelled": 0, "usd": None}
            )
            units = product["sold"] + product["cancelled"]
            rows.append(
                {
                    "product_id": int(p["product_id"]),
                    **{c: p[c] for c in ("sku", "name", "category")},
                    "orders": len(product["orders"]),
                    "units_sold": product["sold"],
                    "units_cancelled": product["cancelled"],
                    "revenue_usd": to_cents(product["usd"] if product["usd"] is not None else Decimal(0)),
                    "cancel_rate": product["cancelled"] / units if units else None,
                }
            )
        by_category: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_category[row["category"]].append(row)
        for ranked in by_category.values():
            ranked.sort(key=lambda row: (-row["revenue_usd"], row["product_id"]))
            for rank, row in enumerate(ranked, start=1):
                row["rank_in_category"] = rank
        return rows


def segment(days: int | None) -> str:
    if days is not None and days <= 30:
        return "active"
    if days is not None and days <= 90:
        return "recent"
    return "inactive"
