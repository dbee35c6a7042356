"""An operational retail database, schema ``sales``, replicated to S3 by AWS DMS.

The simulator runs the shop for ``days`` days ending at ``end_date`` (the window is
``[end_date - days, end_date)``, midnight UTC) and writes exactly what a DMS task with
``TimestampColumnName=dms_commit_ts`` writes under ``<landing>/dms/sales/<table>/`` for the tables
``customers``, ``products``, ``orders`` and ``order_items``:

- a full load at the first instant of the window: ``LOAD00000001.csv``, ``LOAD00000002.csv``, ...
  counting in hex, at most ``full_load_rows_per_file`` rows each, columns ``dms_commit_ts``, the
  table's columns and ``AR_H_CHANGE_SEQ``, no ``Op``; ``dms_commit_ts`` is the full-load time and
  ``AR_H_CHANGE_SEQ`` is empty (DMS leaves header values empty in full-load rows);
- CDC files flushed per table every 4 to 8 simulated hours (only when there are changes; the last
  flush is at the end of the window), named by the flush time (``20261126-1134010000.csv``), columns
  ``Op, dms_commit_ts``, the table's columns and ``AR_H_CHANGE_SEQ``, in commit order. ``U`` carries
  the after-image, ``D`` the whole before-image. All changes of one transaction share its commit
  time: an order and its items, a deleted order and its items, and the two changes of a key that a
  transaction touches twice (below). Commit times are strictly increasing between transactions.
  ``AR_H_CHANGE_SEQ`` is DMS's change-sequence header, added by a transformation rule:
  ``YYYYMMDDHHmmSShh`` of the commit time, then a 19-digit change number common to all tables,
  strictly increasing in commit order, within a transaction too. So (key, dms_commit_ts,
  AR_H_CHANGE_SEQ) identifies a real change, and (dms_commit_ts, AR_H_CHANGE_SEQ) orders the
  changes of a key; (key, dms_commit_ts) does not.

Every value is CSV text; an empty field is null (``phone`` is sometimes null). No value contains a
line break, so one physical line is one record. ``updated_at`` is the commit time, to the second,
of the change that produced the row image (a ``D`` row therefore keeps the older ``updated_at`` of
its before-image).

The full load holds ``customers`` customers, ``products`` products and the orders (with their
items) placed in the 30 days before the window, ``orders_per_day`` a day, in the status they had
reached by then; their remaining steps happen in the window. It also holds one customer for the
money rules, ``HALF_CENT_CUSTOMER_ID``: a US customer with two delivered orders (ids
``HALF_CENT_ORDER_IDS``) of 1 and 2 pieces of one product, so that the exact average order value
lands on a half cent; no activity touches it. Prices are converted from USD into an order's
currency with the lakehouse's money rules (``domains/sales/money.py``): exactly, then rounded once
to cents, half up.

Activity, per simulated day: new customers; e-mail changes and moves (street, city, sometimes the
country), both tracked by the SCD2 history; untracked changes (phone only, a new last name, a
re-save that changes nothing but ``updated_at``); price changes and a few new products; new orders
(1 to 5 items, inserted with the order in one transaction, prices converted from USD at fixed
rates into the currency of the customer's country) whose status moves placed -> paid -> shipped ->
delivered, or to cancelled from placed or paid, each step a later ``U`` (possibly days later, or
after the window, and then it does not happen; a few orders stay ``placed``); deleted customers
(only customers without an open order: their delivered and cancelled orders stay and point to a
customer that no longer exists); deleted orders (the order and all its items in one transaction).
A quarter of the deleted customers come back later under the same ``customer_id`` with new e-mail,
address and phone; a fifth of the deleted orders are restored later under the same ``order_id``
(status ``placed`` again, same items and prices). The first deleted customer and the first deleted
order, both on the first day, always come back within a day.

Transactions that touch a key twice, as real DMS output has: a share of the e-mail changes
(``TWICE_EMAIL_THEN_MOVE_SHARE``) also move the customer in the same transaction (two ``U`` rows of
two tracked changes, so the history has a version that starts and ends at one commit time), and a
share of the order steps whose next step is final (``TWICE_ORDER_STEP_SHARE``) take that step in
the same transaction too (shipped then delivered, or paid then cancelled). Each happens at
least once (forced, as trouble is below) when it can; ``stats`` counts them
(``customers_updated_twice``, ``orders_moved_twice``, ``transactions_touching_a_key_twice``). Their
values come from a random stream of their own, so the rest of the activity stays as it was.

Dirt, on purpose (rates in :class:`RetailTrouble`; if chance has not produced a kind by a random
point in the first half of the window, the next file that allows it gets one, and if no file came
late, one that can be is picked):

1. duplicates: a CDC row written twice, byte for byte, in the same file or in the table's next file;
   among them, a duplicate of the FIRST of two changes of a key in one transaction, delivered in the
   table's next file (``duplicates_of_first_touch_next_file``; forced in the first file of each table
   that has such a transaction, unless it is the table's last): ordered by dms_commit_ts and file
   position alone, it would win over the second change;
2. out of order: a change moved into the table's next file, while a later change of the same key
   (later by dms_commit_ts, then AR_H_CHANGE_SEQ) stays in the earlier file;
3. late files: a CDC file delivered 20 to 36 hours after its flush, after later-named files of its
   table (``DmsFile.late``; its mtime is the late delivery time);
4. a key deleted and later inserted again (customers and orders, above);
5. malformed lines that are not changes: a copy of a change with too few or too many fields, a line
   of garbage, and a line with an unterminated quote (``U,"2026-...``), always the last line of its
   file so that even a multi-line CSV parser loses nothing real;
6. well-formed rows whose ``Op`` is ``X`` or ``Z``, not changes: a copy of a change with one value
   altered (so that applying them would change the result).

The truth (:class:`RetailTruth`) is the state the real changes give, applied in (dms_commit_ts,
AR_H_CHANGE_SEQ) order, and the SCD2 history of customers that Delta Live Tables AUTO CDC
(``keys=[customer_id]``, ``sequence_by=struct(dms_commit_ts, AR_H_CHANGE_SEQ)``,
``apply_as_deletes=Op='D'``, ``stored_as_scd_type=2``,
``track_history_column_list=CUSTOMER_HISTORY_COLUMNS``) gives: a version starts at each insert and
each change of a tracked column, so two tracked changes in one transaction make a version that
starts and ends within one commit time. Its ``__START_AT`` / ``__END_AT`` are structs there; the
flat truth has two columns for each: ``__START_AT`` (dms_commit_ts) and ``__START_AT_CHANGE_SEQ``
(AR_H_CHANGE_SEQ, empty for versions from the full load), ``__END_AT`` and ``__END_AT_CHANGE_SEQ``
(both empty while current). Duplicates, reordering, lateness and junk never change it. The same
arguments give the same files and truth, byte for byte.
"""

from __future__ import annotations

import csv
import gc
import io
import itertools
import math
import os
import random
import re
from bisect import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from lakehouse_dagster.domains.sales.money import round_money
from lakehouse_dagster.domains.sales.source import (  # noqa: F401 (re-exported for the simulator's users)
    CHANGE_SEQUENCE,
    CUSTOMER_HISTORY_COLUMNS,
    ORDER_STATUSES,
    SCHEMA,
    SEQUENCE,
    TABLE_COLUMNS,
    TABLE_KEYS,
    TABLES,
)
from lakehouse_dagster.sample_data.churn import CustomerChurn
from lakehouse_dagster.sample_data.customers import DEFAULT_END_DATE, FIRST_NAMES, LAST_NAMES

RETAIL_TABLES = TABLES
#: The SCD2 truth: DLT's struct ``__START_AT`` / ``__END_AT`` (dms_commit_ts, AR_H_CHANGE_SEQ), flat.
CUSTOMER_HISTORY_OUTPUT_COLUMNS = (
    *TABLE_COLUMNS["customers"],
    "__START_AT",
    "__START_AT_CHANGE_SEQ",
    "__END_AT",
    "__END_AT_CHANGE_SEQ",
)
#: A customer for the money rules (``_Simulation._half_cent_customer``), and its two orders.
HALF_CENT_CUSTOMER_ID = 1_000_000_000
HALF_CENT_ORDER_IDS = (1_000_000_000, 1_000_000_001)
OPEN_STATUSES = frozenset({"placed", "paid", "shipped"})
CDC_OPS = ("I", "U", "D")
HISTORIC_ORDER_DAYS = 30

# Fixed conversion of the USD list price into the order's currency, in basis points.
RATES_BP = {"USD": 10_000, "EUR": 9_200, "GBP": 7_900}
CITIES = {
    "US": ("New York", "Austin", "Seattle", "Chicago"),
    "GB": ("London", "Manchester", "Leeds", "Bristol"),
    "DE": ("Berlin", "München", "Hamburg", "Köln"),
    "FR": ("Paris", "Lyon", "Marseille", "Lille"),
    "NL": ("Amsterdam", "Utrecht", "Rotterdam"),
    "ES": ("Madrid", "Barcelona", "Sevilla", "A Coruña"),
    "IT": ("Roma", "Milano", "Torino"),
    "IE": ("Dublin", "Cork"),
    "SE": ("Stockholm", "Göteborg", "Malmö"),
    "BR": ("São Paulo", "Rio de Janeiro", "Curitiba"),
    "JP": ("Tokyo", "Osaka", "Sapporo"),
    "CA": ("Toronto", "Montréal", "Vancouver"),
    "NA": ("Windhoek", "Swakopmund"),  # Namibia: "NA" is a value, not a null
}
COUNTRIES = tuple(CITIES)
COUNTRY_WEIGHTS = (30, 12, 10, 8, 5, 5, 5, 3, 3, 4, 4, 5, 1)
CURRENCY_BY_COUNTRY = {
    country: "GBP" if country == "GB" else "EUR" if country in {"DE", "FR", "NL", "ES", "IT", "IE"} else "USD"
    for country in COUNTRIES
}
DIAL_CODES = {
    "US": "1",
    "GB": "44",
    "DE": "49",
    "FR": "33",
    "NL": "31",
    "ES": "34",
    "IT": "39",
    "IE": "353",
    "SE": "46",
    "BR": "55",
    "JP": "81",
    "CA": "1",
    "NA": "264",
}
STREET_NAMES = ("Oak", "Maple", "Station", "Church", "Mill", "Harbour", "King", "Garden", "Bridge", "Park")
STREET_KINDS = ("Street", "Road", "Lane", "Avenue", "Way")
DOMAINS = ("example.com", "mail.test", "shop.example", "corp.test")
CATEGORIES = {
    "apparel": ("AP", ("T-Shirt", "Hoodie", "Jacket", "Socks", "Cap")),
    "books": ("BK", ("Cookbook", "Novel", "Atlas", "Notebook")),
    "electronics": ("EL", ("Headphones", "Charger", "Speaker", "Cable", "Mouse")),
    "garden": ("GD", ("Hose", "Trowel", "Planter", "Seeds")),
    "grocery": ("GR", ("Coffee", "Tea", "Olive Oil", "Chocolate")),
    "home": ("HM", ("Mug", "Lamp", "Blanket", "Vase", "Towel")),
    "sports": ("SP", ("Yoga Mat", "Water Bottle", "Ball", "Racket")),
    "toys": ("TY", ("Puzzle", "Robot", "Kite", "Blocks")),
}
ADJECTIVES = ("Classic", "Eco", "Deluxe", "Compact", "Vintage", "Smart", "Organic", "Travel")
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 8, 8, 8, 8, 8, 9, 10, 10, 9, 7, 4, 2)  # UTC
ITEM_COUNT_PERCENT = (30, 25, 20, 15, 10)  # 1..5 items per order, 2.5 on average
QUANTITY_PERCENT = (60, 22, 10, 5, 3)  # 1..5 pieces per item

# Expected changes per simulated day, as fractions of the `customers`, `products` and
# `orders_per_day` arguments.
NEW_CUSTOMER_RATE = 0.005
EMAIL_CHANGE_RATE = 0.003
MOVE_RATE = 0.003
PHONE_CHANGE_RATE = 0.004
NAME_CHANGE_RATE = 0.0005
TOUCH_RATE = 0.002
CUSTOMER_DELETE_RATE = 0.0005
CUSTOMER_REINSERT_SHARE = 0.25
PRICE_CHANGE_RATE = 0.02
NEW_PRODUCT_RATE = 0.003
ORDER_DELETE_RATE = 0.002
ORDER_RESTORE_SHARE = 0.2
# Transactions that touch a key twice: shares of e-mail changes and of order steps to a final status.
TWICE_EMAIL_THEN_MOVE_SHARE = 0.15
TWICE_ORDER_STEP_SHARE = 0.02

_US = 1_000_000
_MINUTE = 60 * _US
_HOUR = 3_600 * _US
_DAY = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS = tuple(f"{second:02d}" for second in range(60))
_HOUR_CUMULATIVE = tuple(itertools.accumulate(HOUR_WEIGHTS))
_COUNTRY_CUMULATIVE = tuple(itertools.accumulate(COUNTRY_WEIGHTS))
_ITEM_COUNTS = tuple(count for count, percent in enumerate(ITEM_COUNT_PERCENT, 1) for _ in range(percent))
_QUANTITIES = tuple(str(count) for count, percent in enumerate(QUANTITY_PERCENT, 1) for _ in range(percent))
_TRACKED = tuple(TABLE_COLUMNS["customers"].index(name) for name in CUSTOMER_HISTORY_COLUMNS)
_ORDER_STEPS = {
    # status: ((probability, next status, min delay, max delay), ...); what is left stays.
    "placed": ((0.90, "paid", 2 * _MINUTE, 12 * _HOUR), (0.07, "cancelled", _HOUR, 72 * _HOUR)),
    "paid": ((0.95, "shipped", 4 * _HOUR, 72 * _HOUR), (0.05, "cancelled", _HOUR, 48 * _HOUR)),
    "shipped": ((1.0, "delivered", 24 * _HOUR, 144 * _HOUR),),
}
# The value an unknown-Op row alters (never a real value), so that applying it would show.
_TAMPERED = {
    "customers": ("email", "x.{}"),
    "products": ("price", "0.00"),
    "orders": ("status", "on_hold"),
    "order_items": ("quantity", "0"),
}


@dataclass(frozen=True)
class DmsFile:
    table: str  # "customers", ...
    relative_path: str  # "dms/sales/orders/20261126-1134010000.csv" or ".../LOAD00000001.csv"
    content: bytes
    delivered_at: datetime  # UTC; when the file arrives (its mtime once landed)
    late: bool = False  # delivered after files of its table with later names


@dataclass(frozen=True)
class RetailTruth:
    # Final state per table: the table's columns, CSV text (None for null), sorted by key.
    tables: dict[str, pd.DataFrame]
    # SCD2 of customers: CUSTOMER_HISTORY_OUTPUT_COLUMNS, by customer_id, then start.
    customers_history: pd.DataFrame
    # Customers who stopped ordering for good (see sample_data/churn.py): customer_id (int) and
    # churned_at (UTC timestamp), by customer_id.
    churned: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["customer_id", "churned_at"]))


@dataclass(frozen=True)
class RetailSimulation:
    files: list[DmsFile]  # in delivery order
    truth: RetailTruth
    start: datetime  # the window, [start, end), UTC
    end: datetime
    stats: dict[str, int]  # changes, trouble and files, counted


@dataclass(frozen=True)
class RetailTrouble:
    """Rates of the delivery trouble. Each kind also happens at least once (forced) when it can."""

    duplicate_rate: float = 0.0002  # per CDC row; half in the same file, half in the next one
    reorder_rate: float = 0.05  # per CDC file: one change moved into the next file of its table
    late_file_rate: float = 0.01  # per CDC file
    late_delay_hours: tuple[float, float] = (20.0, 36.0)
    malformed_rate: float = 0.02  # per CDC file: one junk line
    unknown_op_rate: float = 0.002  # per CDC file: one row with Op X or Z
    forced: bool = True


def simulate_retail(
    *,
    days: int,
    seed: int,
    end_date: date = DEFAULT_END_DATE,
    customers: int = 2_000,
    products: int = 200,
    orders_per_day: int = 300,
    full_load_rows_per_file: int = 50_000,
    trouble: RetailTrouble | None = None,
) -> RetailSimulation:
    """Simulate the shop and its DMS task; return the files in delivery order and the truth."""
    if days < 1 or customers < 1 or products < 1 or orders_per_day < 0 or full_load_rows_per_file < 1:
        raise ValueError("days, customers, products and full_load_rows_per_file must be at least 1")
    end = datetime(end_date.year, end_date.month, end_date.day, tzinfo=UTC)
    start = end - timedelta(days=days)
    simulation = _Simulation(
        seed=seed,
        start_us=_to_us(start),
        days=days,
        customers=customers,
        products=products,
        orders_per_day=orders_per_day,
        rows_per_file=full_load_rows_per_file,
        trouble=trouble or RetailTrouble(),
    )
    # Millions of long-lived tuples make the cyclic garbage collector rescan the heap over and over
    # (it doubled the run time); the simulation creates no reference cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        files = simulation.run()
        truth = simulation.truth()
    finally:
        if collecting:
            gc.enable()
    return RetailSimulation(files=files, truth=truth, start=start, end=end, stats=dict(simulation.stats))


def write_landing(
    simulation: RetailSimulation,
    landing: Path,
    *,
    include_late: bool = True,
    only_late: bool = False,
    delivered_before: datetime | None = None,
) -> list[Path]:
    """Write the files under ``landing/<relative_path>`` with their delivery time as mtime (those
    delivered before ``delivered_before`` only, when given; written again, a file is the same)."""
    if only_late and not include_late:
        raise ValueError("only_late needs include_late")
    written = []
    for dms_file in simulation.files:
        if (only_late and not dms_file.late) or (dms_file.late and not include_late):
            continue
        if delivered_before is not None and dms_file.delivered_at >= delivered_before:
            continue
        path = Path(landing) / dms_file.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dms_file.content)
        mtime_ns = _to_us(dms_file.delivered_at) * 1_000
        os.utime(path, ns=(mtime_ns, mtime_ns))
        written.append(path)
    return written


def write_truth(simulation: RetailSimulation, folder: Path) -> list[Path]:
    """``<folder>/<table>.csv`` per table and ``<folder>/customers_history.csv``; null is empty."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = [*simulation.truth.tables.items(), ("customers_history", simulation.truth.customers_history)]
    written = []
    for name, frame in frames:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(frame.columns)
        writer.writerows(frame.itertuples(index=False, name=None))
        path = folder / f"{name}.csv"
        path.write_bytes(buffer.getvalue().encode("utf-8"))
        written.append(path)
    return written


def cdc_file_name(flush: datetime) -> str:
    """The name DMS gives a CDC file flushed at ``flush``."""
    return f"{flush:%Y%m%d-%H%M%S}{flush.microsecond // 100:04d}.csv"


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _count(rng: random.Random, expected: float) -> int:
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def _csv_line(fields: tuple[str | None, ...] | list[str | None]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


@dataclass
class _Flushed:
    table: str
    name: str
    flush_us: int
    content: bytes


_FORCED_KINDS = (
    "reordered",
    "duplicates_same_file",
    "duplicates_next_file",
    "malformed_field_count",
    "malformed_garbage",
    "malformed_broken_quote",
    "unknown_op_rows",
)
#: Forced as well, at points drawn from a random stream of their own (the others' stay as they were).
_TWICE_KINDS = ("customers_updated_twice", "orders_moved_twice")
FIRST_TOUCH_DUPLICATES = "duplicates_of_first_touch_next_file"
_STAT_NAMES = (
    "inserts",
    "updates",
    "deletes",
    "reinserts",
    "deleted_customers",
    "reinserted_customers",
    "deleted_orders",
    "reinserted_orders",
    "duplicates",
    "late_files",
    "malformed_rows",
    *_FORCED_KINDS,
    *_TWICE_KINDS,
    "transactions_touching_a_key_twice",
    FIRST_TOUCH_DUPLICATES,
)
_NOT_DIGITS = str.maketrans("", "", "-: ")


@dataclass
class _Simulation:
    """The shop and its DMS task. Events run in time order from per-minute buckets."""

    seed: int
    start_us: int
    days: int
    customers: int
    products: int
    orders_per_day: int
    rows_per_file: int
    trouble: RetailTrouble
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"retail:{self.seed}:activity")
        self.trng = random.Random(f"retail:{self.seed}:trouble")  # trouble never shifts the activity
        # Keys touched twice in a transaction take their values from their own stream, too.
        self.twice_rng = random.Random(f"retail:{self.seed}:twice")
        self.end_us = self.start_us + self.days * _DAY
        self.last = self.start_us
        self._minutes: dict[int, str] = {}
        self._cached_second = -1
        self._cached_text = ""
        self._cached_digits = ""
        # AR_H_CHANGE_SEQ: the commit time's digits to the hundredth, then the task's change number.
        self.change_prefix = ""
        self.change_number = 0
        self.start_ts = f"{self._seconds(self.start_us)}.000000"
        # State.
        self.customer_rows: dict[int, tuple] = {}
        self.live: list[int] = []
        self.live_pos: dict[int, int] = {}
        self.open_orders: dict[str, int] = {}
        self.history: dict[int, list[list]] = {}
        self.product_rows: dict[int, tuple] = {}
        self.product_cents: dict[int, int] = {}
        self.product_ids: list[int] = []
        self.product_id_text: dict[int, str] = {}
        self.unit_prices: dict[str, dict[int, str]] = {currency: {} for currency in RATES_BP}
        self.order_rows: dict[int, tuple] = {}
        self.item_rows: dict[int, tuple] = {}
        self.deleted_orders: dict[int, tuple] = {}
        self.next_customer = 1
        self.next_product = 1
        self.next_order = 1
        self.prices: dict[tuple[int, str], str] = {}
        self.small = [str(number) for number in range(64)]
        self.buckets: dict[int, list[tuple]] = {}
        self.minute = -1
        self.sequence = itertools.count()
        # Output.
        self.buffers: dict[str, list[tuple]] = {table: [] for table in RETAIL_TABLES}
        self.carried: dict[str, list[tuple]] = {table: [] for table in RETAIL_TABLES}
        self.flushed: list[_Flushed] = []
        self.load_files: list[tuple[str, str, int, bytes]] = []
        self.next_flush = {table: self._after_flush(self.start_us) for table in RETAIL_TABLES}
        self.flush_min = min(self.next_flush.values())
        window = self.end_us - self.start_us
        self.forced_at = {
            kind: self.start_us + int(window * self.trng.uniform(0.1, 0.5)) for kind in _FORCED_KINDS
        }
        forced = random.Random(f"retail:{self.seed}:forced-twice")
        for kind in _TWICE_KINDS:
            self.forced_at[kind] = self.start_us + int(window * forced.uniform(0.1, 0.5))
        self.first_touch_duplicated: set[str] = set()  # tables
        self.churn = CustomerChurn(self.seed)  # who orders, and who stops (its own random stream)
        self.stats.update(dict.fromkeys(_STAT_NAMES, 0))

    # -- time ------------------------------------------------------------------------------------

    def _seconds(self, micros: int) -> str:
        """``yyyy-MM-dd HH:mm:ss`` of a UTC instant in microseconds since the epoch."""
        minute, second = divmod(micros // _US, 60)
        prefix = self._minutes.get(minute)
        if prefix is None:
            prefix = self._minutes[minute] = f"{_from_us(minute * _MINUTE):%Y-%m-%d %H:%M}:"
        return prefix + _SECONDS[second]

    def _commit(self, moment: int) -> tuple[str, str] | None:
        """Commit a transaction at ``moment`` (or just after the last one): (dms_commit_ts, updated_at)."""
        commit = moment if moment > self.last else self.last + 1
        if commit >= self.end_us:
            return None
        self.last = commit
        if commit > self.flush_min:
            self._flush_until(commit)
        second, micro = divmod(commit, _US)
        if second != self._cached_second:
            self._cached_second = second
            self._cached_text = self._seconds(commit)
            self._cached_digits = self._cached_text.translate(_NOT_DIGITS)
        self.change_prefix = f"{self._cached_digits}{micro // 10_000:02d}"
        return f"{self._cached_text}.{micro:06d}", self._cached_text

    def _emit(self, table: str, op: str, commit_ts: str, row: tuple) -> str:
        """Write a change of the transaction committed last; return its AR_H_CHANGE_SEQ."""
        self.change_number += 1
        change_seq = f"{self.change_prefix}{self.change_number:019d}"
        self.buffers[table].append((op, commit_ts, *row, change_seq))
        return change_seq

    def _twice(self, kind: str, share: float) -> bool:
        """Whether the transaction committed last touches its key a second time."""
        if self.twice_rng.random() < share:
            return True
        return self.trouble.forced and self.stats[kind] == 0 and self.last >= self.forced_at[kind]

    def _after_flush(self, flush_us: int) -> int:
        step = self.trng.randrange(4 * 36_000_000, 8 * 36_000_000) * 100  # 4 to 8 hours, in 100 µs
        return min(flush_us + step, self.end_us)

    def _schedule(self, moment: int, *event: object) -> None:
        """Run ``event[0](moment, *event[1:])`` at ``moment`` (events after the window never run)."""
        if moment < self.end_us:
            minute = max(moment // _MINUTE, self.minute + 1)
            bucket = self.buckets.get(minute)
            if bucket is None:
                bucket = self.buckets[minute] = []
            bucket.append((moment, next(self.sequence), *event))

    # -- generators of values --------------------------------------------------------------------

    def _email(self, first: str, last: str, customer_id: int, rng: random.Random | None = None) -> str:
        handle = re.sub(r"[^a-z.]", "", f"{first}.{last.split(',')[0]}".lower().replace("ü", "ue"))
        return f"{handle}{customer_id}@{(rng or self.rng).choice(DOMAINS)}"

    def _address(self, country: str, rng: random.Random | None = None) -> tuple[str, str]:
        rng = rng or self.rng
        street = f"{rng.randint(1, 250)} {rng.choice(STREET_NAMES)} {rng.choice(STREET_KINDS)}"
        if rng.random() < 0.15:
            street = f"{street}, Apt {rng.randint(1, 40)}"  # needs quoting
        return street, rng.choice(CITIES[country])

    def _phone(self, country: str, rng: random.Random | None = None) -> str | None:
        rng = rng or self.rng
        if rng.random() < 0.05:
            return None
        return f"+{DIAL_CODES[country]} {rng.randint(100, 999)} {rng.randint(100_000, 999_999)}"

    def _country(self, rng: random.Random | None = None) -> str:
        return (rng or self.rng).choices(COUNTRIES, cum_weights=_COUNTRY_CUMULATIVE)[0]

    def _relocate(self, row: list, rng: random.Random) -> None:
        """A move: a new street and city, sometimes in another country."""
        if rng.random() < 0.15:
            row[7] = self._country(rng)
        row[5], row[6] = self._address(row[7], rng)

    def _customer(
        self,
        customer_id: int,
        created: str,
        updated: str,
        rng: random.Random | None = None,
        country: str | None = None,
    ) -> tuple:
        rng = rng or self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if rng.random() < 0.01:
            last = f"{last}, Jr."  # needs quoting
        country = country or self._country(rng)
        street, city = self._address(country, rng)
        return (
            str(customer_id),
            first,
            last,
            self._email(first, last, customer_id, rng),
            self._phone(country, rng),
            street,
            city,
            country,
            created,
            updated,
        )

    def _product(self, product_id: int, updated: str) -> tuple:
        rng = self.rng
        category = rng.choice(tuple(CATEGORIES))
        code, nouns = CATEGORIES[category]
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(nouns)
        roll = rng.random()
        if roll < 0.05:
            name = f"{adjective} {noun}, {rng.randint(2, 6)}-pack"  # needs quoting
        elif roll < 0.08:
            name = f'{noun} "{adjective}"'  # quotes inside a quoted value
        else:
            name = f"{adjective} {noun}"
        self.product_id_text[product_id] = str(product_id)
        cents = max(1, int(math.exp(rng.uniform(0.7, 6.2)))) * 100 - 1
        self._set_price(product_id, cents)
        return (str(product_id), f"{code}-{product_id:06d}", name, category, _money(cents), "USD", updated)

    def _set_price(self, product_id: int, cents: int) -> None:
        self.product_cents[product_id] = cents
        for currency, prices in self.unit_prices.items():
            text = self.prices.get((cents, currency))
            if text is None:
                # The lakehouse's money rules: an exact product, rounded once to cents, half up.
                converted = round_money(Decimal(cents * RATES_BP[currency]).scaleb(-6))
                text = self.prices[(cents, currency)] = str(converted)
            prices[product_id] = text

    def _items(self, order_id: str, currency: str, updated: str) -> tuple:
        random_ = self.rng.random
        products = self.product_ids
        count = min(len(products), _ITEM_COUNTS[int(random_() * 100)])
        prices = self.unit_prices[currency]
        ids = self.product_id_text
        lines = self.small
        chosen: list[int] = []
        items = []
        while len(chosen) < count:
            r = random_()
            product_id = products[int(len(products) * r * r)]  # popular products first
            if product_id in chosen:
                continue
            chosen.append(product_id)
            quantity = _QUANTITIES[int(random_() * 100)]
            items.append(
                (order_id, lines[len(chosen)], ids[product_id], quantity, prices[product_id], updated)
            )
        return tuple(items)

    def _next_step(self, status: str, moment: int) -> tuple[str, int] | None:
        random_ = self.rng.random
        roll = random_()
        for probability, next_status, low, high in _ORDER_STEPS[status]:
            if roll < probability:
                return next_status, moment + low + int((high - low) * random_())
            roll -= probability
        return None

    # -- state changes ---------------------------------------------------------------------------

    def _add_live(self, customer_id: int) -> None:
        self.live_pos[customer_id] = len(self.live)
        self.live.append(customer_id)

    def _remove_live(self, customer_id: int) -> None:
        position = self.live_pos.pop(customer_id)
        last = self.live.pop()
        if last != customer_id:
            self.live[position] = last
            self.live_pos[last] = position

    def _history(self, customer_id: int, op: str, row: tuple, at: tuple[str, str | None]) -> None:
        """The SCD2 rule: a new version at an insert or a change of a tracked column, else in place.
        ``at`` is the change's sequence: (dms_commit_ts, AR_H_CHANGE_SEQ)."""
        versions = self.history.setdefault(customer_id, [])
        current = versions[-1] if versions and versions[-1][2] is None else None
        if op == "D":
            if current is not None:
                current[2] = at
            return
        if current is not None:
            if op == "U" and all(current[0][i] == row[i] for i in _TRACKED):
                current[0] = row
                return
            current[2] = at
        versions.append([row, at, None])

    def _emit_customer(self, op: str, row: tuple, commit_ts: str) -> None:
        change_seq = self._emit("customers", op, commit_ts, row)
        self._history(int(row[0]), op, row, (commit_ts, change_seq))

    # -- the initial database and its full load --------------------------------------------------

    def _initial(self) -> None:
        rng = self.rng
        start = self.start_us
        for _ in range(self.customers):
            customer_id = self.next_customer
            self.next_customer += 1
            created = start - rng.randint(31 * _DAY, 3 * 365 * _DAY)
            updated = created + int((start - 31 * _DAY - created) * rng.random())
            row = self._customer(customer_id, self._seconds(created), self._seconds(updated))
            self.customer_rows[customer_id] = row
            self._add_live(customer_id)
            self._history(customer_id, "I", row, (self.start_ts, None))
        for _ in range(self.products):
            product_id = self.next_product
            self.next_product += 1
            updated = start - rng.randint(_DAY, 365 * _DAY)
            self.product_rows[product_id] = self._product(product_id, self._seconds(updated))
            self.product_ids.append(product_id)
        rng.shuffle(self.product_ids)
        self._historic_orders()
        self._half_cent_customer()

    def _historic_orders(self) -> None:
        """Orders of the 30 days before the window, in the status they have reached at its start."""
        rng = self.rng
        random_ = rng.random
        start = self.start_us
        span = HISTORIC_ORDER_DAYS * _DAY
        moments = sorted(
            start - span + int(span * random_()) for _ in range(self.orders_per_day * HISTORIC_ORDER_DAYS)
        )
        live, rows, open_orders = self.live, self.customer_rows, self.open_orders
        for placed in moments:
            order_id = self.next_order
            self.next_order += 1
            customer_id = self.churn.pick(live, random_())
            assert customer_id is not None  # nobody has churned before the window
            customer = rows[customer_id]
            self.churn.ordered(customer_id, placed)
            currency = CURRENCY_BY_COUNTRY[customer[7]]
            status, moment, step = "placed", placed, self._next_step("placed", placed)
            while step is not None and step[1] < start:
                status, moment = step
                step = self._next_step(status, moment) if status in OPEN_STATUSES else None
            text = str(order_id)
            placed_text = self._seconds(placed)
            row = (text, customer[0], placed_text, status, currency, self._seconds(moment))
            self.order_rows[order_id] = row
            self.item_rows[order_id] = self._items(text, currency, placed_text)
            if status in OPEN_STATUSES:
                open_orders[customer[0]] = open_orders.get(customer[0], 0) + 1
            elif status == "cancelled":
                self.churn.order_cancelled(customer_id)
            if step is not None:
                self._schedule(step[1], self._advance_order, order_id, row, step[0])

    def _half_cent_customer(self) -> None:
        """``HALF_CENT_CUSTOMER_ID``: a US customer of the full load with two delivered orders of one
        product, 1 and 2 pieces, whose exact average order value is a half cent (1.5 times an odd
        price in cents; its cents are even, so half up and half even round it apart). Outside the
        activity's ids and never chosen by it; its values come from a random stream of its own."""
        rng = random.Random(f"retail:{self.seed}:half-cent")
        prices = self.unit_prices["USD"]
        product_id = next(p for p in self.product_ids if self.product_cents[p] % 4 == 3)
        start = self.start_us
        created = start - rng.randint(HISTORIC_ORDER_DAYS * _DAY + _DAY, 3 * 365 * _DAY)
        customer_id = HALF_CENT_CUSTOMER_ID
        row = self._customer(customer_id, self._seconds(created), self._seconds(created), rng, country="US")
        self.customer_rows[customer_id] = row
        self._history(customer_id, "I", row, (self.start_ts, None))
        for order_id, quantity in ((HALF_CENT_ORDER_IDS[0], "1"), (HALF_CENT_ORDER_IDS[1], "2")):
            placed = start - rng.randint(10 * _DAY, HISTORIC_ORDER_DAYS * _DAY)
            placed_text, text = self._seconds(placed), str(order_id)
            delivered = self._seconds(placed + rng.randint(_DAY, 5 * _DAY))
            self.order_rows[order_id] = (text, row[0], placed_text, "delivered", "USD", delivered)
            line = (text, "1", self.product_id_text[product_id], quantity, prices[product_id], placed_text)
            self.item_rows[order_id] = (line,)

    def _full_load(self) -> None:
        tables = {
            "customers": (self.customer_rows[key] for key in sorted(self.customer_rows)),
            "products": (self.product_rows[key] for key in sorted(self.product_rows)),
            "orders": (self.order_rows[key] for key in sorted(self.order_rows)),
            "order_items": (item for key in sorted(self.item_rows) for item in self.item_rows[key]),
        }
        prefix, no_change_seq = (self.start_ts,), (None,)
        delivered = self.start_us
        for table, rows in tables.items():
            header = (SEQUENCE, *TABLE_COLUMNS[table], CHANGE_SEQUENCE)
            for number in itertools.count(1):
                chunk = [prefix + row + no_change_seq for row in itertools.islice(rows, self.rows_per_file)]
                if not chunk and number > 1:
                    break
                buffer = io.StringIO()
                writer = csv.writer(buffer, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(chunk)
                delivered += self.trng.randint(1 * _US, 20 * _US)
                name = f"LOAD{number:08X}.csv"
                self.load_files.append((table, name, delivered, buffer.getvalue().encode()))
                if len(chunk) < self.rows_per_file:
                    break

    # -- daily activity --------------------------------------------------------------------------

    def _arrivals(self, day: int) -> None:
        """Schedule the day's spontaneous changes, at times that follow the shop's daily rhythm."""
        rng = self.rng
        random_ = rng.random
        day_start = self.start_us + day * _DAY
        self.churn.new_day(self.live, day_start)
        customers, products = self.customers, self.products
        first_day = 1 if day == 0 else 0
        counts = (
            (self._new_order, round(self.orders_per_day * rng.uniform(0.9, 1.1))),
            (self._new_customer, _count(rng, customers * NEW_CUSTOMER_RATE)),
            (self._change_email, _count(rng, customers * EMAIL_CHANGE_RATE)),
            (self._move, _count(rng, customers * MOVE_RATE)),
            (self._change_phone, _count(rng, customers * PHONE_CHANGE_RATE)),
            (self._change_name, _count(rng, customers * NAME_CHANGE_RATE)),
            (self._touch, _count(rng, customers * TOUCH_RATE)),
            (self._delete_customer, max(first_day, _count(rng, customers * CUSTOMER_DELETE_RATE))),
            (self._change_price, _count(rng, products * PRICE_CHANGE_RATE)),
            (self._new_product, _count(rng, products * NEW_PRODUCT_RATE)),
            (self._delete_order, max(first_day, _count(rng, self.orders_per_day * ORDER_DELETE_RATE))),
        )
        for handler, count in counts:
            for _ in range(count):
                hour = bisect(_HOUR_CUMULATIVE, random_() * _HOUR_CUMULATIVE[-1])
                self._schedule(day_start + hour * _HOUR + int(_HOUR * random_()), handler)

    def run(self) -> list[DmsFile]:
        self._initial()
        self._full_load()
        buckets = self.buckets
        for day in range(self.days):
            self._arrivals(day)
            first = (self.start_us + day * _DAY) // _MINUTE
            for minute in range(first, first + 24 * 60):
                self.minute = minute
                bucket = buckets.pop(minute, None)
                if bucket:
                    bucket.sort()
                    for event in bucket:
                        event[2](event[0], *event[3:])
        self._flush_until(self.end_us + 1)
        return self._files()

    def _new_order(self, moment: int) -> None:
        live = self.live
        committed = self._commit(moment) if live else None
        if committed is None:
            return
        commit_ts, updated = committed
        customer_id = self.churn.pick(live, self.rng.random())
        if customer_id is None:
            return  # every live customer has churned
        customer = self.customer_rows[customer_id]
        self.churn.ordered(customer_id, self.last)
        currency = CURRENCY_BY_COUNTRY[customer[7]]
        order_id = self.next_order
        self.next_order += 1
        text = str(order_id)
        row = (text, customer[0], updated, "placed", currency, updated)
        self.order_rows[order_id] = row
        self._emit("orders", "I", commit_ts, row)
        items = self._items(text, currency, updated)
        self.item_rows[order_id] = items
        for item in items:
            self._emit("order_items", "I", commit_ts, item)
        self.stats["inserts"] += 1 + len(items)
        self.open_orders[customer[0]] = self.open_orders.get(customer[0], 0) + 1
        step = self._next_step("placed", self.last)
        if step is not None:
            self._schedule(step[1], self._advance_order, order_id, row, step[0])

    def _advance_order(self, moment: int, order_id: int, expected: tuple, status: str) -> None:
        if self.order_rows.get(order_id) is not expected:
            return  # deleted (or deleted and restored) since the step was planned
        committed = self._commit(moment)
        if committed is None:
            return
        self._set_status(order_id, expected, status, *committed)

    def _set_status(self, order_id: int, previous: tuple, status: str, commit_ts: str, updated: str) -> None:
        row = (previous[0], previous[1], previous[2], status, previous[4], updated)
        self.order_rows[order_id] = row
        self._emit("orders", "U", commit_ts, row)
        self.stats["updates"] += 1
        if status == "cancelled":
            self.churn.order_cancelled(int(row[1]))
        if status not in OPEN_STATUSES:
            self.open_orders[row[1]] -= 1
            return
        step = self._next_step(status, self.last)
        if step is None:
            return
        if step[0] not in OPEN_STATUSES and self._twice("orders_moved_twice", TWICE_ORDER_STEP_SHARE):
            # The final step happens in this transaction too: shipped then delivered, paid then cancelled.
            self._set_status(order_id, row, step[0], commit_ts, updated)
            self._count_twice("orders_moved_twice")
        else:
            self._schedule(step[1], self._advance_order, order_id, row, step[0])

    def _count_twice(self, kind: str) -> None:
        self.stats[kind] += 1
        self.stats["transactions_touching_a_key_twice"] += 1

    def _delete_order(self, moment: int) -> None:
        low = max(1, self.next_order - HISTORIC_ORDER_DAYS * max(1, self.orders_per_day))
        for _ in range(10):
            order_id = self.rng.randrange(low, self.next_order) if self.next_order > low else 0
            if order_id in self.order_rows:
                break
        else:
            return
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, _ = committed
        row = self.order_rows.pop(order_id)
        items = self.item_rows.pop(order_id)
        self._emit("orders", "D", commit_ts, row)
        for item in items:
            self._emit("order_items", "D", commit_ts, item)
        self.stats["deletes"] += 1 + len(items)
        self.stats["deleted_orders"] += 1
        if row[3] in OPEN_STATUSES:
            self.open_orders[row[1]] -= 1
        first = self.stats["deleted_orders"] == 1
        if first or self.rng.random() < ORDER_RESTORE_SHARE:
            self.deleted_orders[order_id] = (row, items)
            delay = self.rng.randint(_HOUR, 20 * _HOUR) if first else self.rng.randint(_HOUR, 72 * _HOUR)
            self._schedule(self.last + delay, self._restore_order, order_id)

    def _restore_order(self, moment: int, order_id: int) -> None:
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, updated = committed
        old, old_items = self.deleted_orders.pop(order_id)
        row = (old[0], old[1], old[2], "placed", old[4], updated)
        items = tuple((*item[:5], updated) for item in old_items)
        self.order_rows[order_id] = row
        self.item_rows[order_id] = items
        self._emit("orders", "I", commit_ts, row)
        for item in items:
            self._emit("order_items", "I", commit_ts, item)
        self.stats["inserts"] += 1 + len(items)
        self.stats["reinserts"] += 1 + len(items)
        self.stats["reinserted_orders"] += 1
        self.open_orders[row[1]] = self.open_orders.get(row[1], 0) + 1
        step = self._next_step("placed", self.last)
        if step is not None:
            self._schedule(step[1], self._advance_order, order_id, row, step[0])

    def _new_customer(self, moment: int) -> None:
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, updated = committed
        customer_id = self.next_customer
        self.next_customer += 1
        row = self._customer(customer_id, updated, updated)
        self.customer_rows[customer_id] = row
        self._add_live(customer_id)
        self._emit_customer("I", row, commit_ts)
        self.stats["inserts"] += 1

    def _customer_update(self, moment: int, kind: str) -> None:
        if not self.live:
            return
        rng = self.rng
        customer_id = self.live[int(len(self.live) * rng.random())]
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, updated = committed
        row = list(self.customer_rows[customer_id])
        if kind == "email":
            domain = rng.choice(DOMAINS)
            handle = row[3].split("@")[0].rstrip("0123456789")
            row[3] = f"{handle}{rng.randint(1, 9_999)}@{domain}"
            if rng.random() < 0.3:
                row[4] = self._phone(row[7])  # an untracked column changes too
        elif kind == "move":
            self._relocate(row, rng)
        elif kind == "phone":
            row[4] = self._phone(row[7])
        elif kind == "name":
            row[2] = rng.choice(LAST_NAMES)
        row[9] = updated
        new = tuple(row)
        self.customer_rows[customer_id] = new
        self._emit_customer("U", new, commit_ts)
        self.stats["updates"] += 1
        if kind == "email" and self._twice("customers_updated_twice", TWICE_EMAIL_THEN_MOVE_SHARE):
            self._relocate(row, self.twice_rng)  # and, in the same transaction, a move
            moved = tuple(row)
            self.customer_rows[customer_id] = moved
            self._emit_customer("U", moved, commit_ts)
            self.stats["updates"] += 1
            self._count_twice("customers_updated_twice")

    def _change_email(self, moment: int) -> None:
        self._customer_update(moment, "email")

    def _move(self, moment: int) -> None:
        self._customer_update(moment, "move")

    def _change_phone(self, moment: int) -> None:
        self._customer_update(moment, "phone")

    def _change_name(self, moment: int) -> None:
        self._customer_update(moment, "name")

    def _touch(self, moment: int) -> None:
        self._customer_update(moment, "touch")  # a re-save: only updated_at changes

    def _delete_customer(self, moment: int) -> None:
        rng = self.rng
        for _ in range(20):
            if not self.live:
                return
            customer_id = self.live[int(len(self.live) * rng.random())]
            if not self.open_orders.get(str(customer_id)):
                break
        else:
            return
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, _ = committed
        row = self.customer_rows.pop(customer_id)
        self._remove_live(customer_id)
        self._emit_customer("D", row, commit_ts)
        self.stats["deletes"] += 1
        self.stats["deleted_customers"] += 1
        first = self.stats["deleted_customers"] == 1
        if first or rng.random() < CUSTOMER_REINSERT_SHARE:
            delay = rng.randint(2 * _HOUR, 20 * _HOUR) if first else rng.randint(2 * _HOUR, 10 * _DAY)
            self._schedule(self.last + delay, self._reinsert_customer, customer_id)

    def _reinsert_customer(self, moment: int, customer_id: int) -> None:
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, updated = committed
        rng = self.rng
        row = list(self._customer(customer_id, updated, updated))
        old = self.history[customer_id][-1][0]
        row[1], row[2] = old[1], old[2]  # the same person, with a new e-mail, address and phone
        row[3] = f"{row[3].split('@')[0]}.back@{rng.choice(DOMAINS)}"
        new = tuple(row)
        self.customer_rows[customer_id] = new
        self._add_live(customer_id)
        self._emit_customer("I", new, commit_ts)
        self.stats["inserts"] += 1
        self.stats["reinserts"] += 1
        self.stats["reinserted_customers"] += 1

    def _change_price(self, moment: int) -> None:
        rng = self.rng
        product_id = rng.choice(self.product_ids)
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, updated = committed
        dollars = (self.product_cents[product_id] + 1) // 100
        new_dollars = max(1, round(dollars * rng.uniform(0.85, 1.2)))
        if new_dollars == dollars:
            new_dollars += 1
        cents = new_dollars * 100 - 1
        self._set_price(product_id, cents)
        old = self.product_rows[product_id]
        row = (*old[:4], _money(cents), old[5], updated)
        self.product_rows[product_id] = row
        self._emit("products", "U", commit_ts, row)
        self.stats["updates"] += 1

    def _new_product(self, moment: int) -> None:
        committed = self._commit(moment)
        if committed is None:
            return
        commit_ts, updated = committed
        product_id = self.next_product
        self.next_product += 1
        row = self._product(product_id, updated)
        self.product_rows[product_id] = row
        self.product_ids.append(product_id)
        self._emit("products", "I", commit_ts, row)
        self.stats["inserts"] += 1

    # -- flushing, with trouble ------------------------------------------------------------------

    def _flush_until(self, commit: int) -> None:
        """Flush every table whose next flush comes before ``commit``."""
        for table in RETAIL_TABLES:
            while self.next_flush[table] < commit:
                flush_us = self.next_flush[table]
                self._flush(table, flush_us)
                self.next_flush[table] = math.inf if flush_us >= self.end_us else self._after_flush(flush_us)
        self.flush_min = min(self.next_flush.values())

    def _due(self, kind: str, flush_us: int, rate: float) -> bool:
        if self.trng.random() < rate:
            return True
        return self.trouble.forced and self.stats[kind] == 0 and flush_us >= self.forced_at[kind]

    def _flush(self, table: str, flush_us: int) -> None:
        trng = self.trng
        trouble = self.trouble
        rows = self.buffers[table][:]
        self.buffers[table].clear()
        final = flush_us >= self.end_us
        moved = None
        if rows and not final and self._due("reordered", flush_us, trouble.reorder_rate):
            moved = self._reorder(table, rows)
        for row in self.carried[table]:
            rows.insert(trng.randint(0, len(rows)), row)
        self.carried[table] = [] if moved is None else [moved]
        if not rows:
            return
        # 1. duplicates, same file or next file
        probability = trouble.duplicate_rate
        picks = [index for index in range(len(rows)) if trng.random() < probability]
        same_due = self._due("duplicates_same_file", flush_us, 0.0)
        next_due = not final and self._due("duplicates_next_file", flush_us, 0.0)
        # Duplicates keep their change's sequence, so each transaction key's last change stays put.
        last_changes = _last_changes(table, rows)
        for index in sorted(picks, reverse=True):
            if not final and (next_due or trng.random() < 0.5):
                self._carry(table, rows[index], last_changes)
                next_due = False
            else:
                rows.insert(trng.randint(index + 1, len(rows)), rows[index])
                self._count_duplicate("duplicates_same_file")
                same_due = False
        if same_due:
            index = trng.randrange(len(rows))
            rows.insert(trng.randint(index + 1, len(rows)), rows[index])
            self._count_duplicate("duplicates_same_file")
        if next_due:
            self._carry(table, rows[trng.randrange(len(rows))], last_changes)
        if not final and self.trouble.forced and table not in self.first_touch_duplicated:
            first = next((row for row in rows if _is_first_touch(table, row, last_changes)), None)
            if first is not None:
                self._carry(table, first, last_changes)
        # 6. unknown Op
        if self._due("unknown_op_rows", flush_us, trouble.unknown_op_rate):
            rows.insert(trng.randint(0, len(rows)), self._unknown_op(table, rows[trng.randrange(len(rows))]))
            self.stats["unknown_op_rows"] += 1
        # 5. malformed lines
        junk: dict[int, list[str]] = {}
        tail = ""
        kinds = [
            kind for kind in ("malformed_field_count", "malformed_garbage") if self._due(kind, flush_us, 0.0)
        ]
        if trng.random() < trouble.malformed_rate:
            kinds.append(
                trng.choice(("malformed_field_count", "malformed_garbage", "malformed_broken_quote"))
            )
        if self._due("malformed_broken_quote", flush_us, 0.0):
            kinds.append("malformed_broken_quote")
        for kind in kinds:
            sample = rows[trng.randrange(len(rows))]
            if kind == "malformed_broken_quote":
                if tail:
                    continue
                rest = ",".join((value or "").replace('"', "").replace(",", " ") for value in sample[1:])
                tail = f'{sample[0]},"{rest}\n'
            elif kind == "malformed_field_count":
                cut = trng.randint(1, 3)
                broken = sample[:-cut] if trng.random() < 0.5 else (*sample, *["x"] * cut)
                junk.setdefault(trng.randint(0, len(rows)), []).append(_csv_line(broken))
            else:
                noise = trng.choice("abcdefXYZ") + "".join(
                    trng.choice("abcdefXYZ0123456789#~ ") for _ in range(trng.randint(8, 40))
                )
                junk.setdefault(trng.randint(0, len(rows)), []).append(f"{noise}\n")
            self.stats[kind] += 1
            self.stats["malformed_rows"] += 1
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("Op", SEQUENCE, *TABLE_COLUMNS[table], CHANGE_SEQUENCE))
        done = 0
        for position in sorted(junk):
            writer.writerows(rows[done:position])
            buffer.write("".join(junk[position]))
            done = position
        writer.writerows(rows[done:])
        buffer.write(tail)
        name = cdc_file_name(_from_us(flush_us))
        self.flushed.append(_Flushed(table, name, flush_us, buffer.getvalue().encode()))

    def _carry(self, table: str, row: tuple, last_changes: dict[tuple, str]) -> None:
        """Write ``row`` again in the table's next file (``last_changes``: of its file's rows)."""
        self.carried[table].append(row)
        self._count_duplicate("duplicates_next_file")
        if _is_first_touch(table, row, last_changes):
            self.stats[FIRST_TOUCH_DUPLICATES] += 1
            self.first_touch_duplicated.add(table)

    def _count_duplicate(self, kind: str) -> None:
        self.stats[kind] += 1
        self.stats["duplicates"] += 1

    def _reorder(self, table: str, rows: list[tuple]) -> tuple | None:
        """Take out a change (for the next file) that has a later change of its key in ``rows``
        (later by AR_H_CHANGE_SEQ, which follows the commit order)."""
        width = len(TABLE_KEYS[table])
        latest: dict[tuple, str] = {}
        candidates = []
        for index in range(len(rows) - 1, -1, -1):
            row = rows[index]
            key = row[2 : 2 + width]
            later = latest.get(key)
            if later is not None and later > row[-1]:
                candidates.append(index)
            else:
                latest[key] = row[-1]
        if not candidates:
            return None
        self.stats["reordered"] += 1
        return rows.pop(self.trng.choice(candidates))

    def _unknown_op(self, table: str, row: tuple) -> tuple:
        column, pattern = _TAMPERED[table]
        index = 2 + TABLE_COLUMNS[table].index(column)
        values = list(row)
        values[0] = self.trng.choice("XZ")
        values[index] = pattern.format(values[index])
        return tuple(values)

    # -- delivery --------------------------------------------------------------------------------

    def _files(self) -> list[DmsFile]:
        trng = self.trng
        trouble = self.trouble
        delivered = {id(item): item.flush_us + trng.randint(2 * _US, 90 * _US) for item in self.flushed}
        late: set[int] = set()
        eligible = []
        for table in RETAIL_TABLES:
            own = [item for item in self.flushed if item.table == table]
            for item, following in reversed(list(itertools.pairwise(own))):
                delay = int(trng.uniform(*trouble.late_delay_hours) * _HOUR)
                if item.flush_us + delay <= delivered[id(following)]:
                    continue
                eligible.append((item, delay))
                if trng.random() < trouble.late_file_rate:
                    late.add(id(item))
                    delivered[id(item)] = item.flush_us + delay
        if trouble.forced and not late and eligible:
            item, delay = eligible[trng.randrange(len(eligible))]
            late.add(id(item))
            delivered[id(item)] = item.flush_us + delay
        self.stats["late_files"] = len(late)
        files = [
            DmsFile(table, f"dms/{SCHEMA}/{table}/{name}", content, _from_us(moment))
            for table, name, moment, content in self.load_files
        ]
        files += [
            DmsFile(
                item.table,
                f"dms/{SCHEMA}/{item.table}/{item.name}",
                item.content,
                _from_us(delivered[id(item)]),
                late=id(item) in late,
            )
            for item in self.flushed
        ]
        files.sort(key=lambda dms_file: (dms_file.delivered_at, dms_file.relative_path))
        self.stats["full_load_files"] = len(self.load_files)
        self.stats["cdc_files"] = len(self.flushed)
        self.stats["files"] = len(files)
        self.stats["changes"] = self.stats["inserts"] + self.stats["updates"] + self.stats["deletes"]
        return files

    # -- truth -----------------------------------------------------------------------------------

    def truth(self) -> RetailTruth:
        states = {
            "customers": [self.customer_rows[key] for key in sorted(self.customer_rows)],
            "products": [self.product_rows[key] for key in sorted(self.product_rows)],
            "orders": [self.order_rows[key] for key in sorted(self.order_rows)],
            "order_items": [item for key in sorted(self.item_rows) for item in self.item_rows[key]],
        }
        tables = {table: _frame(rows, TABLE_COLUMNS[table]) for table, rows in states.items()}
        history = [
            (*row, *start, *(end or (None, None)))
            for key in sorted(self.history)
            for row, start, end in self.history[key]
        ]
        churned = pd.DataFrame(
            {
                "customer_id": list(self.churn.churned),
                "churned_at": pd.to_datetime(list(self.churn.churned.values()), unit="us", utc=True),
            }
        ).sort_values("customer_id", ignore_index=True)
        return RetailTruth(
            tables=tables,
            customers_history=_frame(history, CUSTOMER_HISTORY_OUTPUT_COLUMNS),
            churned=churned,
        )


def _last_changes(table: str, rows: list[tuple]) -> dict[tuple, str]:
    """The last AR_H_CHANGE_SEQ of each (transaction, key) among ``rows``."""
    width = len(TABLE_KEYS[table])
    last: dict[tuple, str] = {}
    for row in rows:
        transaction_key = (row[1], *row[2 : 2 + width])
        last[transaction_key] = max(last.get(transaction_key, ""), row[-1])
    return last


def _is_first_touch(table: str, row: tuple, last_changes: dict[tuple, str]) -> bool:
    """Whether another change of ``row``'s key in the same transaction follows it."""
    width = len(TABLE_KEYS[table])
    return row[-1] < last_changes[(row[1], *row[2 : 2 + width])]


def _frame(rows: list[tuple], columns: tuple[str, ...]) -> pd.DataFrame:
    values = np.empty((len(rows), len(columns)), dtype=object)
    if rows:
        values[:] = rows
    return pd.DataFrame(values, columns=list(columns))
