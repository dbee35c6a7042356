"""The DMS files of the retail simulator, read back and replayed with the csv module: no Spark.

The documented semantics: one record per line; a line that does not parse, has the wrong number
of fields or an Op other than I, U, D is not a change; identical lines are one change; changes
apply in (dms_commit_ts, AR_H_CHANGE_SEQ) order; full-load rows are inserts at the full-load
time, with no change sequence.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMNS = {
    "customers": (
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "street",
        "city",
        "country",
        "created_at",
        "updated_at",
    ),
    "products": ("product_id", "sku", "name", "category", "price", "currency", "updated_at"),
    "orders": ("order_id", "customer_id", "order_ts", "status", "currency", "updated_at"),
    "order_items": ("order_id", "line_number", "product_id", "quantity", "unit_price", "updated_at"),
}
KEYS = {"customers": 1, "products": 1, "orders": 1, "order_items": 2}  # leading key columns
CDC_OPS = {"I", "U", "D"}


@dataclass(frozen=True)
class Line:
    """One physical data line of a landed file, parsed on its own."""

    table: str
    file: str
    number: int
    text: str
    fields: tuple[str, ...] | None  # None: the line does not parse
    width: int  # fields in the header
    load: bool

    @property
    def well_formed(self) -> bool:
        return self.fields is not None and len(self.fields) == self.width

    @property
    def change(self) -> bool:
        return self.well_formed and (self.load or self.fields[0] in CDC_OPS)

    @property
    def op(self) -> str:
        return "I" if self.load else self.fields[0]

    @property
    def ts(self) -> str:
        return self.fields[0] if self.load else self.fields[1]

    @property
    def seq(self) -> str:
        """AR_H_CHANGE_SEQ, the last column; empty in full-load rows."""
        return self.fields[-1]

    @property
    def at(self) -> tuple[str, str]:
        """The change's sequence: (dms_commit_ts, AR_H_CHANGE_SEQ)."""
        return (self.ts, self.seq)

    @property
    def values(self) -> tuple[str | None, ...]:
        return tuple(value or None for value in self.fields[1 if self.load else 2 : -1])

    @property
    def key(self) -> tuple[str, ...]:
        return self.values[: KEYS[self.table]]


def read_lines(landing: Path, table: str) -> list[Line]:
    lines = []
    for path in sorted((landing / "dms" / "sales" / table).iterdir()):
        text = path.read_bytes().decode("utf-8")
        assert text.endswith("\n") and "\r" not in text, path
        physical = text[:-1].split("\n")
        header = next(csv.reader([physical[0]]))
        for number, line in enumerate(physical[1:], start=2):
            try:
                fields = tuple(next(csv.reader([line], strict=True)))
            except csv.Error:
                fields = None
            load = path.name.startswith("LOAD")
            lines.append(Line(table, path.name, number, line, fields, len(header), load))
    return lines


def ordered_changes(lines: list[Line]) -> list[Line]:
    """The real changes, each once, in (dms_commit_ts, AR_H_CHANGE_SEQ) order."""
    first: dict[tuple, Line] = {}
    for line in sorted(lines, key=lambda line: (line.file, line.number)):
        if line.change:
            first.setdefault((line.op, line.at, line.values), line)
    changes = sorted(first.values(), key=lambda line: line.at)
    every = Counter((line.key, line.at) for line in changes)
    assert all(count == 1 for count in every.values()), "(key, dms_commit_ts, AR_H_CHANGE_SEQ) is a change"
    return changes


def sort_key(key: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(int(part) for part in key)


def replay(table: str, changes: list[Line]) -> pd.DataFrame:
    state: dict[tuple, tuple] = {}
    for change in changes:
        if change.op == "D":
            assert state.pop(change.key) == change.values, "a D row carries the whole before-image"
        else:
            assert (change.key in state) == (change.op == "U"), "I for a new key, U for an existing one"
            state[change.key] = change.values
    rows = [state[key] for key in sorted(state, key=sort_key)]
    return pd.DataFrame(rows, columns=list(COLUMNS[table]), dtype=object)


def replay_landing(landing: Path) -> dict[str, pd.DataFrame]:
    """The final state of every table, from the files under ``landing``: CSV text, None for null."""
    return {table: replay(table, ordered_changes(read_lines(landing, table))) for table in COLUMNS}
