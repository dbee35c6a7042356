"""Independent expectations, computed with the csv module and pandas straight from the landed files.

Nothing here imports the code under test. The semantics it encodes are the documented ones:
one record per line; a line with a broken quote or the wrong number of fields is malformed;
empty fields are null; silver keeps the latest record per customer by last_activity, then
by ingestion order.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pandas as pd

SEGMENT_LIMITS = ((30, "active"), (90, "recent"))


def landed_records(paths_in_ingestion_order: list[Path]) -> pd.DataFrame:
    """One row per non-blank data line, with its raw fields, file order and line number."""
    records = []
    for file_order, path in enumerate(paths_in_ingestion_order):
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        if not lines:
            continue
        header = [name.strip() for name in next(csv.reader([lines[0]]))]
        for line_number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                fields = next(csv.reader([line], strict=True))
            except csv.Error:
                fields = None
            well_formed = fields is not None and len(fields) == len(header)
            record = {name: (value or None) for name, value in zip(header, fields or [], strict=False)}
            if not well_formed:
                record = {}
            record.update(
                _file=str(path),
                _file_order=file_order,
                _line=line_number,
                _malformed=not well_formed,
                _raw=line,
            )
            records.append(record)
    return pd.DataFrame(records)


def parse_id(value: object) -> int | None:
    if not isinstance(value, str) or not value.strip().lstrip("-").isdigit():
        return None
    return int(value.strip())


def parse_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None


def _clean_text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def segment(days: float | None) -> str:
    if days is None or pd.isna(days):
        return "inactive"
    for limit, name in SEGMENT_LIMITS:
        if days <= limit:
            return name
    return "inactive"


def expected_silver_customers(records: pd.DataFrame, as_of: date) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": records["customer_id"].map(parse_id) if "customer_id" in records else None,
            "first_name": records["first_name"].map(_clean_text),
            "last_name": records["last_name"].map(_clean_text),
            "email": records["email"].map(lambda v: (_clean_text(v) or "").lower() or None),
            "country": records["country"].map(lambda v: (_clean_text(v) or "").upper() or None),
            "signup_date": records["signup_date"].map(parse_date),
            "last_activity": records["last_activity"].map(parse_date),
            "loyalty_tier": records["loyalty_tier"].map(lambda v: (_clean_text(v) or "").lower() or None)
            if "loyalty_tier" in records
            else None,
            "_order": list(zip(records["_file_order"], records["_line"], strict=True)),
        }
    )
    frame = frame[frame["customer_id"].notna()].copy()
    frame["_activity_key"] = frame["last_activity"].map(lambda d: d.toordinal() if d else -1)
    frame = frame.sort_values(["_activity_key", "_order"]).groupby("customer_id").tail(1)
    frame["days_since_activity"] = frame["last_activity"].map(lambda d: (as_of - d).days if d else None)
    frame["customer_segment"] = frame["days_since_activity"].map(segment)
    columns = [
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "country",
        "signup_date",
        "last_activity",
        "loyalty_tier",
        "days_since_activity",
        "customer_segment",
    ]
    return frame[columns].astype({"customer_id": "int64"}).sort_values("customer_id").reset_index(drop=True)


def expected_customer_segments(silver: pd.DataFrame) -> pd.DataFrame:
    """Shares and averages as one division of two Python integers: the double the README's rule
    says the table holds, bit for bit."""
    frame = silver.assign(country=silver["country"].fillna("UNKNOWN"))
    records = []
    for (segment_name, country), group in frame.groupby(["customer_segment", "country"]):
        days = [int(value) for value in group["days_since_activity"] if not pd.isna(value)]
        records.append(
            {
                "customer_segment": segment_name,
                "country": country,
                "customers": len(group),
                "avg_days_since_activity": sum(days) / len(days) if days else None,
                "share_of_customers": len(group) / len(silver),
            }
        )
    return pd.DataFrame(records).sort_values(["customer_segment", "country"]).reset_index(drop=True)


# AUTO CDC, applied one change at a time -------------------------------------------------------


def _in_order(change: dict, order: tuple[str, ...]) -> tuple:
    """The change's place in ``order``; a null sorts first, as in Spark's ordering of a struct."""
    return tuple((change[o] is not None, change[o]) for o in order)


def _first_copies(changes: list[dict], order: tuple[str, ...]) -> list[dict]:
    """Each change once: of changes equal in every field but their position (the last two fields
    of ``order``: file and line), the first by position. A copy is a redelivery, not a change."""
    position = order[-2:]
    first: dict[tuple, dict] = {}
    for change in sorted(changes, key=lambda c: _in_order(c, position)):
        first.setdefault(tuple(sorted((k, repr(v)) for k, v in change.items() if k not in position)), change)
    return list(first.values())


def apply_changes_scd1(
    changes: list[dict], keys: tuple[str, ...], order: tuple[str, ...]
) -> dict[tuple, dict]:
    """Current state per key: replay changes sorted by ``order``; ``Op == 'D'`` removes the key."""
    state: dict[tuple, dict] = {}
    for change in sorted(_first_copies(changes, order), key=lambda c: _in_order(c, order)):
        key = tuple(change[k] for k in keys)
        if change.get("Op") == "D":
            state.pop(key, None)
        else:
            state[key] = change
    return state


def apply_changes_scd2(
    changes: list[dict],
    keys: tuple[str, ...],
    order: tuple[str, ...],
    tracked: tuple[str, ...],
    sequence: str | tuple[str, ...],
) -> list[dict]:
    """Versions per key, as Delta Live Tables' SCD type 2 keeps them. Changes of a key with the
    same sequence are one instant: only the last of them (by ``order``) is applied. With several
    sequence columns, ``__START_AT`` and ``__END_AT`` are tuples of them (DLT's struct)."""

    def at(change: dict) -> object:
        return change[sequence] if isinstance(sequence, str) else tuple(change[c] for c in sequence)

    versions: list[dict] = []
    current: dict[tuple, dict] = {}
    instants: dict[tuple, dict] = {}
    for change in sorted(_first_copies(changes, order), key=lambda c: _in_order(c, order)):
        instants[(*(change[k] for k in keys), at(change))] = change
    for change in sorted(instants.values(), key=lambda c: _in_order(c, order)):
        key = tuple(change[k] for k in keys)
        open_version = current.get(key)
        if change.get("Op") == "D":
            if open_version is not None:
                open_version["__END_AT"] = at(change)
                del current[key]
            continue
        if open_version is not None and all(open_version[c] == change[c] for c in tracked):
            open_version.update({k: v for k, v in change.items() if k not in ("__START_AT", "__END_AT")})
            continue
        if open_version is not None:
            open_version["__END_AT"] = at(change)
        new_version = {**change, "__START_AT": at(change), "__END_AT": None}
        versions.append(new_version)
        current[key] = new_version
    return versions
