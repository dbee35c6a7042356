"""Customer CSV batches, as a CRM export would drop them into the landing zone.

``<landing>/customers/customers_00001.csv``, ... with the columns
``customer_id, first_name, last_name, email, country, signup_date, last_activity``;
files from two thirds of the way on add ``loyalty_tier``. The same seed gives the same files.

Dirt, on purpose: mixed-case and space-padded emails; empty required fields; a non-numeric
``customer_id``; unparseable dates; one malformed line per file (a broken quote or a wrong
field count); names that need quoting; customers who appear again in later files with newer
values.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

COLUMNS = ["customer_id", "first_name", "last_name", "email", "country", "signup_date", "last_activity"]
NEW_COLUMN = "loyalty_tier"
DEFAULT_END_DATE = date(2026, 11, 26)

FIRST_NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Diego",
    "Emma",
    "Farah",
    "Gus",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Viktor",
    "Wen",
    "Yusuf",
]
LAST_NAMES = [
    "Adams",
    "Berg",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Huang",
    "Ito",
    "Jensen",
    "Kumar",
    "Lopez",
    "Müller",
    "Nakamura",
    "O'Brien",
    "Petrov",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
]
DOMAINS = ["example.com", "mail.test", "shop.example", "corp.test"]
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "BR", "JP", "NA"]
LOYALTY_TIERS = ["bronze", "silver", "gold", "platinum"]
BAD_DATES = ["2024-13-45", "31/12/2023", "not a date", "2023-02-30"]


@dataclass
class _Customer:
    customer_id: int
    first_name: str
    last_name: str
    email: str
    country: str
    signup_date: date
    last_activity: date


@dataclass
class _Generator:
    rng: random.Random
    end_date: date
    next_id: int
    customers: dict[int, _Customer] = field(default_factory=dict)

    def new_customer(self) -> _Customer:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        if self.rng.random() < 0.01:
            last = f"{last}, Jr."  # needs quoting
        signup = self.end_date - timedelta(days=self.rng.randint(30, 3 * 365))
        activity = signup + timedelta(days=self.rng.randint(0, (self.end_date - signup).days))
        handle = f"{first}.{last}".lower().replace(" ", "").replace(",", "").replace("'", "")
        customer = _Customer(
            customer_id=self.next_id,
            first_name=first,
            last_name=last,
            email=f"{handle}{self.next_id}@{self.rng.choice(DOMAINS)}",
            country=self.rng.choice(COUNTRIES),
            signup_date=signup,
            last_activity=activity,
        )
        self.next_id += 1
        self.customers[customer.customer_id] = customer
        return customer

    def updated_customer(self, customer_id: int) -> _Customer:
        customer = self.customers[customer_id]
        customer.last_activity = min(
            self.end_date, customer.last_activity + timedelta(days=self.rng.randint(1, 60))
        )
        if self.rng.random() < 0.5:
            customer.email = f"new.{customer.email}"
        if self.rng.random() < 0.2:
            customer.country = self.rng.choice(COUNTRIES)
        return customer

    def dirty_row(self, customer: _Customer) -> list[str]:
        rng = self.rng
        email = customer.email
        if rng.random() < 0.08:
            email = "".join(c.upper() if rng.random() < 0.5 else c for c in email)
        if rng.random() < 0.05:
            email = f"  {email} "
        row = [
            str(customer.customer_id),
            customer.first_name,
            customer.last_name,
            email,
            customer.country,
            customer.signup_date.isoformat(),
            customer.last_activity.isoformat(),
        ]
        roll = rng.random()
        if roll < 0.010:
            row[3] = ""  # no email
        elif roll < 0.015:
            row[1] = ""  # no first name
        elif roll < 0.020:
            row[4] = ""  # no country
        elif roll < 0.023:
            row[0] = ""  # no customer_id
        elif roll < 0.025:
            row[0] = f"C-{customer.customer_id}"  # not a number
        elif roll < 0.030:
            row[5] = rng.choice(BAD_DATES)
        elif roll < 0.033:
            row[6] = rng.choice(BAD_DATES)
        return row


def generate_customers(
    out: Path,
    *,
    rows: int,
    files: int,
    seed: int,
    start_index: int = 1,
    end_date: date = DEFAULT_END_DATE,
) -> list[Path]:
    """Write ``files`` CSV files with ``rows`` data lines in all under ``out/customers``."""
    if rows < 1 or files < 1:
        raise ValueError("rows and files must be at least 1")
    folder = out / "customers"
    folder.mkdir(parents=True, exist_ok=True)
    generator = _Generator(random.Random(seed), end_date, next_id=1)
    written: list[Path] = []
    for index in range(files):
        rows_in_file = rows // files + (1 if index < rows % files else 0)
        with_tier = files >= 2 and index >= (2 * files) // 3
        seen_before = list(generator.customers)
        lines: list[list[str]] = []
        for _ in range(rows_in_file):
            if seen_before and generator.rng.random() < 0.15:
                customer = generator.updated_customer(generator.rng.choice(seen_before))
            else:
                customer = generator.new_customer()
            row = generator.dirty_row(customer)
            if with_tier:
                row.append(generator.rng.choice(LOYALTY_TIERS))
            lines.append(row)
        path = folder / f"customers_{start_index + index:05d}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS + ([NEW_COLUMN] if with_tier else []))
            writer.writerows(lines)
            handle.write(_malformed_line(index, files, generator.rng))
        written.append(path)
    return written


def _malformed_line(index: int, files: int, rng: random.Random) -> str:
    """One broken line per file: alternately a broken quote and a wrong field count (both if one file)."""
    broken_quote = f'{900000 + index},"Broken,Quote,broken@example.com,US,2024-01-01,2024-06-01\n'
    extra_field = f"{900000 + index},Extra,Field,extra@example.com,US,2024-01-01,2024-06-01,x,y\n"
    if files == 1:
        return broken_quote + extra_field
    return broken_quote if index % 2 == 0 else extra_field
