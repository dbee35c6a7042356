"""Alerts: what a failure says, free of Dagster and of any destination.

An alert names its failure by an ``identity`` (the run and, for a check, the asset, the check
and the partition): a failure alerts once, however often it is looked at. ``check_alert`` and
``run_alert`` build alerts from plain values; ``defs/alerts.py`` reads them from Dagster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

CHECK_FAILED = "check_failed"
RUN_FAILED = "run_failed"
TABLE_STALE = "table_stale"
TABLE_FRESH_AGAIN = "table_fresh_again"
#: Sample keys an alert shows, at most.
SAMPLES = 5
_SUBJECT_LENGTH = 100


@dataclass(frozen=True)
class Alert:
    kind: str
    #: What failed, once: ``check:<run>:<asset>:<check>[:<partition>]``, ``run:<run>`` or
    #: ``freshness:<asset>:<event>`` (a table's freshness state changed).
    identity: str
    #: One line.
    summary: str
    #: Empty for a freshness alert: no run made a table stale.
    run_id: str
    occurred_at: str
    table: str | None = None
    check: str | None = None
    severity: str | None = None
    failing_count: int | None = None
    sample_keys: list[str] = field(default_factory=list)
    description: str | None = None
    partition: str | None = None
    job: str | None = None
    run_url: str | None = None
    #: A failed run: the error, and the steps that failed.
    error: str | None = None
    failed_steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    def subject(self) -> str:
        """At most 100 printable ASCII characters (an SNS e-mail subject)."""
        text = re.sub(r"[^\x20-\x7e]", "?", f"[lakehouse] {self.summary}")
        return text if len(text) <= _SUBJECT_LENGTH else text[: _SUBJECT_LENGTH - 3] + "..."

    def text(self) -> str:
        """Readable, for e-mail and chat."""
        lines = [self.summary, ""]
        for label, value in (
            ("table", self.table),
            ("check", self.check),
            ("severity", self.severity),
            ("failing", self.failing_count),
            ("sample keys", ", ".join(self.sample_keys) if self.sample_keys else None),
            ("partition", self.partition),
            ("failed steps", ", ".join(self.failed_steps) if self.failed_steps else None),
            ("job", self.job),
            ("run", self.run_url or self.run_id),
            ("at", self.occurred_at),
        ):
            if value not in (None, ""):
                lines.append(f"{label}: {value}")
        for text in (self.description, self.error):
            if text:
                lines += ["", text]
        return "\n".join(lines)


def failing_count(metadata: Mapping[str, Any]) -> int | None:
    """How many rows (or files, or days) fail, from a check's metadata as this project writes it."""
    if "failed_records" in metadata:  # expectations
        return int(metadata["failed_records"])
    if "null_keys" in metadata or "duplicate_rows" in metadata:  # primary key
        return int(metadata.get("null_keys", 0)) + int(metadata.get("duplicate_rows", 0))
    for key in ("orphans", "files_rejected", "days_differing", "stale"):
        if key in metadata:
            return int(metadata[key])
    if isinstance(metadata.get("anomalies"), Mapping):
        return len(metadata["anomalies"])
    return None


def sample_keys(metadata: Mapping[str, Any]) -> list[str]:
    """A few keys of failing rows (or the failing files, or days)."""
    for key in ("sample_failing_keys", "sample_duplicate_keys", "sample_orphans"):
        if isinstance(metadata.get(key), Sequence) and not isinstance(metadata[key], str):
            return [str(value) for value in metadata[key]][:SAMPLES]
    for key in ("rejected_files", "anomalies"):
        if isinstance(metadata.get(key), Mapping):
            return [str(value) for value in metadata[key]][:SAMPLES]
    return []


def table_of(asset_path: Sequence[str]) -> str:
    """The table of an asset key's path or of a step key's parts: ``["silver", "silver.customers"]``
    (a key ends with the table's full name) or ``["silver", "customers"]`` (a step,
    ``silver__customers``) -> ``silver.customers``; a maintenance asset or step names its table."""
    path = list(asset_path)
    if len(path) > 2 and path[0] == "maintenance":
        path = path[1:]
    if "." in path[-1]:
        return path[-1].removeprefix("maintenance.")
    return ".".join(path)


def check_alert(
    *,
    run_id: str,
    asset_path: Sequence[str],
    check: str,
    severity: str,
    metadata: Mapping[str, Any],
    description: str | None,
    partition: str | None,
    job: str | None,
    run_url: str | None,
    occurred_at: str,
) -> Alert:
    table = table_of(asset_path)
    count = failing_count(metadata)
    failing = f" ({count} failing)" if count is not None else ""
    return Alert(
        kind=CHECK_FAILED,
        identity=f"check:{run_id}:{'/'.join(asset_path)}:{check}" + (f":{partition}" if partition else ""),
        summary=f"check {check} failed on {table}{failing}",
        run_id=run_id,
        occurred_at=occurred_at,
        table=table,
        check=check,
        severity=severity,
        failing_count=count,
        sample_keys=sample_keys(metadata),
        description=description,
        partition=partition,
        job=job,
        run_url=run_url,
    )


def run_alert(
    *,
    run_id: str,
    job: str,
    failed_steps: Sequence[str],
    tables: Sequence[str],
    error: str,
    partition: str | None,
    run_url: str | None,
    occurred_at: str,
) -> Alert:
    where = ", ".join(tables) if tables else job
    return Alert(
        kind=RUN_FAILED,
        identity=f"run:{run_id}",
        summary=f"run of {job} failed: {where}",
        run_id=run_id,
        occurred_at=occurred_at,
        table=", ".join(tables) or None,
        error=error,
        failed_steps=list(failed_steps),
        partition=partition,
        job=job,
        run_url=run_url,
    )


def freshness_alert(
    *,
    asset_path: Sequence[str],
    stale: bool,
    state: str,
    previous_state: str,
    event_id: int,
    last_materialised_at: str | None,
    occurred_at: str,
) -> Alert:
    """A table's freshness state changed: it became ``stale`` (``WARN`` or ``FAIL``, as the
    deployment alerts), or is no longer (fresh again)."""
    table = table_of(asset_path)
    last = f"last materialised {last_materialised_at}" if last_materialised_at else "never materialised"
    became = "stale" if stale else "fresh again"
    return Alert(
        kind=TABLE_STALE if stale else TABLE_FRESH_AGAIN,
        identity=f"freshness:{'/'.join(asset_path)}:{event_id}",
        summary=f"{table} is {became} (freshness {state}, was {previous_state}): {last}",
        run_id="",
        occurred_at=occurred_at,
        table=table,
        severity={"FAIL": "ERROR", "WARN": "WARN"}.get(state),
        description=(
            "No materialisation within the table's freshness policy: check its schedule, its "
            "sensor or automation, and its upstream tables."
            if stale
            else None
        ),
    )
