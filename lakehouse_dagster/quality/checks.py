"""Check declarations and outcomes, free of Dagster: the Dagster layer turns them into asset checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.quality.expectations import Action, Expectation, ExpectationResult, over_tolerance_text


class Severity(StrEnum):
    WARN = "WARN"
    ERROR = "ERROR"


@dataclass(frozen=True)
class CheckSpec:
    """A check a table declares; its outcome comes from the table's unit."""

    name: str
    description: str
    severity: Severity = Severity.ERROR
    #: A failure keeps downstream assets of the run from running; by default an ERROR does.
    blocks: bool | None = None

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.ERROR if self.blocks is None else self.blocks

    def with_description(self, key: Sequence[str]) -> CheckSpec:
        return replace(self, description=self.description.format(key=", ".join(key)))


PRIMARY_KEY_CHECK = CheckSpec("primary_key", "({key}) is present and unique in every row.")


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    severity: Severity
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def severity_of(action: Action) -> Severity:
    """``fail`` expectations are errors (they block downstream); ``warn`` and ``drop`` warn."""
    return Severity.ERROR if action is Action.FAIL else Severity.WARN


def expectation_check_specs(expectations: Sequence[Expectation]) -> tuple[CheckSpec, ...]:
    return tuple(
        CheckSpec(e.name, f"[{e.action}] {e.description or e.condition}", severity_of(e.action))
        for e in expectations
    )


def expectation_outcomes(results: Sequence[ExpectationResult]) -> list[CheckOutcome]:
    return [
        CheckOutcome(
            result.expectation.name,
            passed=result.passed,
            severity=severity_of(result.expectation.action),
            description=expectation_description(result),
            metadata={
                "passed_records": result.passed_rows,
                "failed_records": result.failed_rows,
                "failure_ratio": result.failure_ratio,
                "tolerated_ratio": result.tolerance,
                "action": str(result.expectation.action),
                "condition": result.expectation.condition,
                "sample_failing_keys": result.sample_keys,
                # The days over the tolerance, for a write grouped by day that has any.
                **({"days_over_tolerance": list(result.over_tolerance)} if result.over_tolerance else {}),
            },
        )
        for result in results
    ]


_CONSEQUENCE = {
    Action.WARN: "kept",
    Action.DROP: "dropped to quarantine",
    Action.FAIL: "nothing was written",
}


def percent(share: float) -> str:
    """``0.03`` as ``3%``, ``0.001`` as ``0.1%``."""
    return f"{share * 100:.3g}%"


def tolerance_text(tolerance: float, passed: bool) -> str:
    """``within the tolerated 3%`` or ``more than the tolerated 0%``."""
    return f"{'within' if passed else 'more than'} the tolerated {percent(tolerance)}"


def expectation_description(result: ExpectationResult) -> str:
    """What the counts mean: ``194 of 20006 rows failed, within the tolerated 3% (kept)``; with
    the days over the tolerance, for a write grouped by day."""
    total = result.passed_rows + result.failed_rows
    if total == 0:
        return "No rows to check"
    if result.failed_rows == 0:
        return f"All {total} rows pass {result.expectation.condition}"
    if result.expectation.action is Action.FAIL and result.passed:
        consequence = "written"
    else:
        consequence = _CONSEQUENCE[result.expectation.action]
    return (
        f"{result.failed_rows} of {total} rows failed {result.expectation.condition}, "
        f"{tolerance_text(result.tolerance, result.passed)}"
        + (f" on {over_tolerance_text(result)}" if result.over_tolerance else "")
        + f" ({consequence})"
    )


def primary_key_outcome(table: DataFrame, key: Sequence[str], where: Column | None = None) -> CheckOutcome:
    """Rows with a null key part, and rows beyond the first of each key.

    Duplicates are the keyed rows less the keys, counted with a group-by: Sail 0.7's
    COUNT(DISTINCT a, b) takes a minute on 2.5M rows where the group-by takes a tenth of a
    second, and an aggregate over that group-by fails on a Delta table holding one key
    ("Physical input schema should be the same...").
    """
    rows = table.where(where) if where is not None else table
    columns = [F.col("`" + c.replace("`", "``") + "`") for c in key]
    present = reduce(lambda a, b: a & b, (c.isNotNull() for c in columns))
    stats = rows.agg(F.count(F.lit(1)).alias("rows"), F.count(F.when(~present, 1)).alias("null_keys")).first()
    keys = rows.where(present).groupBy(*columns).count()
    keyed_rows = stats["rows"] - stats["null_keys"]
    duplicates = keyed_rows - keys.count() if keyed_rows else 0
    samples = (
        [
            ", ".join(str(value) for value in row[: len(key)])
            for row in keys.where(F.col("count") > 1).limit(5).collect()
        ]
        if duplicates
        else []
    )
    return CheckOutcome(
        PRIMARY_KEY_CHECK.name,
        passed=stats["null_keys"] == 0 and duplicates == 0,
        severity=PRIMARY_KEY_CHECK.severity,
        description=f"{stats['null_keys']} rows with a null key and {duplicates} duplicate rows",
        metadata={
            "rows": stats["rows"],
            "null_keys": stats["null_keys"],
            "duplicate_rows": duplicates,
            "sample_duplicate_keys": samples,
        },
    )
