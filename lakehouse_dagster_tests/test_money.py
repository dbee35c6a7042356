"""The money columns' arithmetic on the engine, against Python's ``decimal``: exact, rounded once, half up."""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

import pytest
from pyspark.sql import functions as F

from lakehouse_dagster.domains.sales.money import ROUNDED, USD_PER_UNIT, money_type, round_money
from lakehouse_dagster.domains.sales.transforms import average_to_cents, rounded_to_cents, to_usd

CENT = Decimal("0.01")
#: Sail: "... is too large to store in a Decimal128"; Spark: NUMERIC_VALUE_OUT_OF_RANGE / overflow.
OVERFLOW = r"too large|overflow|OUT_OF_RANGE"


def expected_average(total: Decimal, count: int) -> Decimal | None:
    """Cut to 60 digits (never onto a half cent from below), then half up."""
    if count <= 0:
        return None
    with localcontext() as context:
        context.prec, context.rounding = 60, ROUND_DOWN
        quotient = total / count
    return quotient.quantize(CENT, rounding=ROUND_HALF_UP)


def cases() -> list[tuple[Decimal, int]]:
    """Half cents, and values 10^-12 either side of one, over counts up to a billion; negatives; 0."""
    rng = random.Random(17)
    found = [(Decimal("6029.325"), 3), (Decimal("-2009.775"), 1), (Decimal(0), 4), (Decimal("5.00"), 0)]
    for _ in range(150):
        count = rng.choice([1, 2, 3, 7, 16, 1_000, 1_000_003, 1_000_000_007])
        tie = (rng.randrange(10**7) + Decimal("0.5")) * CENT * count
        step = Decimal("1e-12")
        found += [(tie, count), (tie + step, count), (tie - step, count), (-tie, count)]
        found.append((Decimal(rng.randrange(10**15)).scaleb(-12), count))
    return found


def test_averages_and_totals_are_rounded_once_half_up_exactly(spark) -> None:
    frame = spark.createDataFrame(
        [(format(total, "f"), count) for total, count in cases()], "total string, orders bigint"
    ).select(F.col("total").cast("decimal(38,12)").alias("total"), "orders")
    result = frame.select(
        "total",
        "orders",
        average_to_cents(F.col("total"), F.col("orders")).alias("average"),
        rounded_to_cents(F.col("total")).alias("rounded"),
    )
    assert [(f.name, f.dataType.simpleString()) for f in result.schema.fields[2:]] == [
        ("average", "decimal(18,2)"),
        ("rounded", "decimal(18,2)"),
    ]
    rows = result.collect()
    assert len(rows) == len(cases())
    for row in rows:
        assert row.average == expected_average(row.total, row.orders), (row.total, row.orders)
        assert row.rounded == row.total.quantize(CENT, rounding=ROUND_HALF_UP), row.total
    on_ties = [row for row in rows if row.orders and is_half_cent(row.total, row.orders)]
    assert len(on_ties) >= 300
    assert all(
        row.average == row.total / row.orders + Decimal("0.005").copy_sign(row.total) for row in on_ties
    )


def is_half_cent(total: Decimal, count: int) -> bool:
    """total / count is an odd number of half cents (exact integer arithmetic)."""
    return (total * 200) % count == 0 and (abs(total) * 200 / count) % 2 == 1


def test_a_conversion_to_usd_is_the_exact_product_with_the_decimal_rate(spark) -> None:
    amounts = [("99.99", "EUR"), ("5.00", "EUR"), ("0.01", "GBP"), ("12345678.90", "USD"), ("1.00", "XXX")]
    frame = spark.createDataFrame(amounts, "amount string, currency string")
    result = frame.select(to_usd(F.col("amount"), F.col("currency")).alias("usd"))
    assert result.schema["usd"].dataType.simpleString() == "decimal(35,12)"
    expected = [Decimal(a) * USD_PER_UNIT[c] if c in USD_PER_UNIT else None for a, c in amounts]
    assert [row.usd for row in result.collect()] == expected
    assert Decimal("5.00") * USD_PER_UNIT["EUR"] == Decimal("5.435"), "a half cent, kept exact"


@pytest.mark.parametrize(
    ("value", "rounded"),
    [("2.345", "2.35"), ("2.355", "2.36"), ("-2.345", "-2.35"), ("2.3449999", "2.34"), ("0.005", "0.01")],
)
def test_the_python_rule_is_half_up(value: str, rounded: str) -> None:
    assert round_money(Decimal(value)) == Decimal(rounded)


def test_a_money_column_doc_states_its_type() -> None:
    assert money_type(ROUNDED.doc("Average order value.")) == "DECIMAL(18,2)"
    assert money_type("Units of orders not cancelled.") is None


def test_a_total_too_large_for_its_type_fails_the_query_rather_than_turning_null(spark) -> None:
    largest = "9999999999999999.99"  # DECIMAL(18,2)'s largest value
    frame = spark.createDataFrame([(largest,), (largest,)], "amount string").select(
        F.col("amount").cast("decimal(18,2)").alias("amount")
    )
    total = F.sum("amount")
    assert frame.limit(1).select(rounded_to_cents(total).alias("t")).collect()[0].t == Decimal(largest)
    with pytest.raises(Exception, match=OVERFLOW):
        frame.select(rounded_to_cents(total).alias("t")).collect()
    with pytest.raises(Exception, match=OVERFLOW):
        frame.select(average_to_cents(total * 10**5, F.lit(1)).alias("a")).collect()
