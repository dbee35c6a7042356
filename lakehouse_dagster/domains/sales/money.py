"""The money rules of the sales domain, in one place (no Spark here: the simulator and the tests use them).

- **Types.** Money is ``DECIMAL``, never floating point. Prices are ``PRICE_TYPE`` as the source
  database holds them (bronze parses the CSV text exactly). Every amount the lakehouse computes
  (line and order amounts, revenue, averages, USD values) is ``AMOUNT_TYPE``: up to 10^16 units
  of a currency, about 900 times thirty years of sales of a retailer selling a billion a day. A
  value that does not fit fails the run (the engine's decimal overflow error, never a wrapped,
  truncated or null value).
- **Exact until the end.** Sums, products and conversions are exact decimals (an amount times a
  ``RATE_TYPE`` rate has ``AMOUNT_SCALE + RATE_SCALE`` places, and so do sums of them); each
  published value is rounded **once**, at the end, to cents.
- **One rounding mode: half up** (``ROUND_HALF_UP``: half away from zero, 2.345 -> 2.35,
  -2.345 -> -2.35), as Spark's ``round`` and the bronze typing of ``DECIMAL`` text round.
- **Averages** are the exact sum divided by the count, rounded once: never the average of
  rounded values, nor a rounded sum divided.
- **Conversions to USD** multiply the exact amount by the fixed reference rate (a decimal, in
  ``USD_PER_UNIT``), add up the exact products, and round the total once.
- **Shares and ratios** (cancelled share, cancel rate) are ``DOUBLE``: one division of two exact
  integer counts, which IEEE 754 rounds correctly, so every engine gives the same bits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

PRICE_TYPE = "DECIMAL(12,2)"
AMOUNT_TYPE = "DECIMAL(18,2)"
AMOUNT_SCALE = 2
#: Up to 10 places: USD per unit of the weakest currencies (0.0000238 for a rial) keeps 6 digits.
RATE_TYPE = "DECIMAL(16,10)"
RATE_SCALE = 10
ROUNDING = ROUND_HALF_UP
CENTS = Decimal(1).scaleb(-AMOUNT_SCALE)

#: Fixed reference rates: US dollars per unit of the currency.
USD_PER_UNIT: dict[str, Decimal] = {"USD": Decimal("1"), "EUR": Decimal("1.087"), "GBP": Decimal("1.266")}


def round_money(value: Decimal) -> Decimal:
    """``value`` rounded to cents, half up: the one rounding a published amount gets."""
    return value.quantize(CENTS, rounding=ROUNDING)


@dataclass(frozen=True)
class Money:
    """What a money column holds: its type, and how its value is made."""

    sql_type: str
    how: str

    def doc(self, text: str = "") -> str:
        """``text`` followed by the column's money rule, for its column doc."""
        return f"{text} Money, {self.sql_type}: {self.how}.".strip()


_MONEY_DOC = re.compile(r"\bMoney, (DECIMAL\(\d+,\d+\)):")


def money_type(doc: str) -> str | None:
    """The declared type of a money column, from its column doc (written by ``Money.doc``);
    None for a column that is not money."""
    match = _MONEY_DOC.search(doc)
    return match[1] if match else None


#: A price as the source database holds it.
PRICE = Money(PRICE_TYPE, "as in the source database (parsed exactly in bronze)")
#: A product or sum of prices: exact, never rounded.
EXACT = Money(AMOUNT_TYPE, "exact (a product or sum of prices, never rounded)")
#: An average or a USD value: computed exactly, then rounded once to cents, half up.
ROUNDED = Money(AMOUNT_TYPE, "computed exactly, then rounded once to cents, half up")
