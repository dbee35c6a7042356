"""Expectations: a name, a SQL boolean over a table's rows, and what to do with rows that fail it.

- ``warn``: keep the row, count it;
- ``drop``: keep the row out of the table and send it to quarantine, with the names of the
  drop expectations it failed;
- ``fail``: stop before anything is written.

A row passes an expectation when its condition is true; false or null fails it. All
expectations of a table are evaluated in one pass: one column of flags per expectation, and
the failure counts from a single aggregation.

Tolerances are judged per group when the counts are grouped (a partitioned write's days): an
expectation passes only if every day is within its tolerance, so a day gets the same verdict
whether it is written alone or inside a backfill range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import reduce
from typing import Any

from pyspark.errors import AnalysisException, IllegalArgumentException, UnsupportedOperationException
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DataType, NullType

from lakehouse_dagster.declarations.names import enum_value

FAILED_EXPECTATIONS = "_failed_expectations"


class Action(StrEnum):
    WARN = "warn"
    DROP = "drop"
    FAIL = "fail"


@dataclass(frozen=True)
class Expectation:
    name: str
    condition: str
    action: Action = Action.WARN
    description: str = ""

    def __post_init__(self) -> None:
        # Actions are compared with ``is``: the string "drop" (as the README writes it) becomes
        # Action.DROP here, or it would silently act as a warn.
        object.__setattr__(self, "action", action_of(self.action, f"expectation {self.name!r}"))


def action_of(value: Action | str, owner: str) -> Action:
    """``value`` as an ``Action``; raise naming ``owner`` and the allowed values otherwise."""
    return enum_value(Action, value, f"{owner}: unknown action ")


class ExpectationFailedError(ValueError):
    """A ``fail`` expectation has more failing rows than it tolerates; nothing was written."""

    def __init__(
        self,
        message: str,
        results: Sequence[ExpectationResult],
        groups: Mapping[Any, GroupCounts] | None = None,
    ) -> None:
        super().__init__(message)
        self.results = list(results)
        #: The counts of each group (day), when the evaluation was grouped.
        self.groups = dict(groups or {})


@dataclass(frozen=True)
class ExpectationResult:
    expectation: Expectation
    passed_rows: int
    failed_rows: int
    sample_keys: list[str] = field(default_factory=list)

    tolerance: float = 0.0
    #: For counts grouped by day: the days whose own share of failing rows exceeds the
    #: tolerance, each with (failed rows, rows) of that day.
    over_tolerance: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def failure_ratio(self) -> float:
        total = self.passed_rows + self.failed_rows
        return self.failed_rows / total if total else 0.0

    @property
    def passed(self) -> bool:
        """Within tolerance: at most ``tolerance`` (a share of the rows) fail, in total and on
        every day of a grouped evaluation."""
        return self.failure_ratio <= self.tolerance and not self.over_tolerance


@dataclass(frozen=True)
class GroupCounts:
    """The counts of one group of rows (one day of a partitioned write)."""

    rows: int
    dropped: int
    #: Expectation name -> failing rows of the group.
    failed: Mapping[str, int]


@dataclass(frozen=True)
class Evaluation:
    """The input rows flagged with the drop expectations they failed, and the counts."""

    #: The input columns plus ``_failed_expectations``: names of the drop expectations failed
    #: (only drop ones: why a row is quarantined; warn and fail failures are counted).
    flagged: DataFrame
    results: list[ExpectationResult]
    input_rows: int
    dropped_rows: int
    #: The column the counts are grouped by, if any, and the counts of each of its values (a
    #: null value is not a group).
    by: str | None = None
    groups: Mapping[Any, GroupCounts] = field(default_factory=dict)

    @property
    def kept(self) -> DataFrame:
        return self.flagged.where(F.size(F.col(FAILED_EXPECTATIONS)) == 0).drop(FAILED_EXPECTATIONS)

    @property
    def dropped(self) -> DataFrame:
        return self.flagged.where(F.size(F.col(FAILED_EXPECTATIONS)) > 0)


NO_ROWS = GroupCounts(0, 0, {})


def results_of_group(results: Sequence[ExpectationResult], counts: GroupCounts) -> list[ExpectationResult]:
    """``results`` restricted to one group's ``counts`` (without sample keys)."""
    return [
        ExpectationResult(
            r.expectation,
            passed_rows=counts.rows - counts.failed.get(r.expectation.name, 0),
            failed_rows=counts.failed.get(r.expectation.name, 0),
            tolerance=r.tolerance,
        )
        for r in results
    ]


def _passes(expectation: Expectation) -> Column:
    return F.coalesce(F.expr(expectation.condition).cast("boolean"), F.lit(False))


def evaluate(
    frame: DataFrame,
    expectations: Sequence[Expectation],
    *,
    key_columns: Sequence[str] = (),
    tolerances: Mapping[str, float] | None = None,
    by: str | None = None,
) -> Evaluation:
    """Evaluate every expectation in one aggregation; raise ``ExpectationFailedError`` when a
    ``fail`` expectation has a larger share of failing rows than it tolerates (0 unless given).

    Up to three sample keys of failing rows (the smallest, the largest and one more) come from
    the same aggregation. With ``by`` (a column), the aggregation is grouped by it, and the
    counts of every group come with the totals (a partitioned write's counts per day); an
    expectation then passes only if each group is within its tolerance too.
    """
    tolerances = tolerances or {}
    names = [e.name for e in expectations]
    if len(set(names)) != len(names):
        raise ValueError(f"expectation names must be unique: {names}")
    flags = {e.name: _passes(e) for e in expectations}
    drop_failures = [F.when(~flags[e.name], F.lit(e.name)) for e in expectations if e.action is Action.DROP]
    failed_drops = (
        F.filter(F.array(*drop_failures), lambda name: name.isNotNull()) if drop_failures else F.array()
    ).cast("array<string>")
    flagged = frame.select("*", failed_drops.alias(FAILED_EXPECTATIONS))

    key = F.concat_ws("|", *(F.coalesce(F.col(c).cast("string"), F.lit("null")) for c in key_columns))
    aggregates = [
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(F.size(failed_drops) > 0, 1)).alias("dropped"),
    ]
    for i, expectation in enumerate(expectations):
        failing_key = F.when(~flags[expectation.name], key)
        aggregates.append(F.count(F.when(~flags[expectation.name], 1)).alias(f"failed_{i}"))
        if key_columns:
            aggregates += [
                F.min(failing_key).alias(f"min_{i}"),
                F.max(failing_key).alias(f"max_{i}"),
                F.first(failing_key, ignorenulls=True).alias(f"any_{i}"),
            ]
    check_conditions(frame, expectations)
    if by is None:
        rows_of_groups = [frame.agg(*aggregates).first()]
    else:
        rows_of_groups = frame.groupBy(F.col(by).alias(_GROUP)).agg(*aggregates).collect()
    totals = _totals(rows_of_groups, len(expectations), bool(key_columns))
    rows = totals["rows"]
    groups = {
        row[_GROUP]: GroupCounts(
            row["rows"], row["dropped"], {e.name: row[f"failed_{i}"] for i, e in enumerate(expectations)}
        )
        for row in rows_of_groups
        if by is not None and row[_GROUP] is not None
    }
    results = []
    for i, expectation in enumerate(expectations):
        failed = totals[f"failed_{i}"]
        samples = [totals[f"{which}_{i}"] for which in ("min", "any", "max")] if key_columns else []
        tolerance = tolerances.get(expectation.name, 0.0)
        results.append(
            ExpectationResult(
                expectation,
                passed_rows=rows - failed,
                failed_rows=failed,
                sample_keys=sorted({s for s in samples if s is not None}),
                tolerance=tolerance,
                over_tolerance=_over_tolerance(expectation.name, tolerance, groups),
            )
        )

    failing = [r for r in results if r.expectation.action is Action.FAIL and not r.passed]
    if failing:
        message = "; ".join(_failure_message(r, rows) for r in failing) + "; nothing was written"
        raise ExpectationFailedError(message, results, groups)
    return Evaluation(flagged, results, input_rows=rows, dropped_rows=totals["dropped"], by=by, groups=groups)


_GROUP = "_group"


#: What the engine raises for a condition it cannot analyse (Sail: a syntax error is an illegal
#: argument, an unknown function an unsupported operation).
_UNANALYSABLE = (AnalysisException, IllegalArgumentException, UnsupportedOperationException)


class InvalidExpectationError(ValueError):
    """An expectation's condition is not a valid SQL boolean over the table's columns."""


def check_conditions(frame: DataFrame, expectations: Sequence[Expectation]) -> None:
    """Raise ``InvalidExpectationError`` naming each expectation whose condition the engine
    cannot analyse over ``frame`` (a misspelt column, a syntax error) or that is not a boolean
    (``amount`` for ``amount > 0`` would pass every non-zero amount). One analysis, no scan."""
    conditions = [F.expr(e.condition).alias(f"_condition_{i}") for i, e in enumerate(expectations)]
    try:
        types = [column.dataType for column in frame.select(*conditions).schema.fields]
    except _UNANALYSABLE:
        types = [_condition_type(frame, e) for e in expectations]
    problems = [
        f"expectation {e.name!r} ({e.condition}): "
        + (t if isinstance(t, str) else f"a {t.simpleString()}, not a boolean")
        for e, t in zip(expectations, types, strict=True)
        if isinstance(t, str) or not isinstance(t, (BooleanType, NullType))
    ]
    if problems:
        columns = ", ".join(frame.columns)
        raise InvalidExpectationError("; ".join(problems) + f"; the columns are {columns}")


def _condition_type(frame: DataFrame, expectation: Expectation) -> DataType | str:
    """The type of one condition over ``frame``, or the engine's first line about it."""
    try:
        return frame.select(F.expr(expectation.condition)).schema.fields[0].dataType
    except _UNANALYSABLE as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _totals(rows: Sequence[Row], expectations: int, with_samples: bool) -> dict[str, Any]:
    """The aggregates of all groups together: counts add up, the sample keys are the smallest,
    the largest and one more of all groups. No group (no rows at all) gives zeros."""
    totals: dict[str, Any] = {
        "rows": sum(r["rows"] for r in rows),
        "dropped": sum(r["dropped"] for r in rows),
    }
    for i in range(expectations):
        totals[f"failed_{i}"] = sum(r[f"failed_{i}"] for r in rows)
        if with_samples:
            for which, pick in (("min", min), ("max", max)):
                values = [r[f"{which}_{i}"] for r in rows if r[f"{which}_{i}"] is not None]
                totals[f"{which}_{i}"] = pick(values) if values else None
            totals[f"any_{i}"] = next((r[f"any_{i}"] for r in rows if r[f"any_{i}"] is not None), None)
    return totals


def _over_tolerance(
    name: str, tolerance: float, groups: Mapping[Any, GroupCounts]
) -> dict[str, tuple[int, int]]:
    """The groups (in order) whose share of rows failing ``name`` exceeds ``tolerance``."""
    over = {}
    for group in sorted(groups):
        counts = groups[group]
        failed = counts.failed.get(name, 0)
        if counts.rows and failed / counts.rows > tolerance:
            over[str(group)] = (failed, counts.rows)
    return over


def over_tolerance_text(result: ExpectationResult, limit: int = 5) -> str:
    """``2026-12-01 (1 of 1 rows), 2026-12-03 (2 of 4 rows)``: the days over the tolerance,
    the first ``limit`` of them and how many more."""
    days = [f"{day} ({failed} of {rows} rows)" for day, (failed, rows) in result.over_tolerance.items()]
    more = len(days) - limit
    return ", ".join(days[:limit]) + (f" and {more} more days" if more > 0 else "")


def _failure_message(result: ExpectationResult, rows: int) -> str:
    expectation = result.expectation
    message = f"expectation {expectation.name!r} ({expectation.condition}) failed for {result.failed_rows}"
    message += f" of {rows} rows (tolerated share {result.tolerance:g})"
    if result.over_tolerance:
        message += f", more than tolerated on {over_tolerance_text(result)}"
    return message + (f", e.g. keys {', '.join(result.sample_keys)}" if result.sample_keys else "")


def passing(expectations: Sequence[Expectation], *, action: Action = Action.DROP) -> Column:
    """True for rows that pass every expectation with ``action``: a filter without the counting."""
    action = action_of(action, "passing()")
    conditions = [_passes(e) for e in expectations if e.action is action]
    return reduce(lambda left, right: left & right, conditions, F.lit(True))
