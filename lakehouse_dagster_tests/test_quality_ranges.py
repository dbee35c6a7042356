"""Expectations on a daily-partitioned table: a day gets the same verdict whether it is written
alone or inside a backfill range; a failed range run records its quality day by day."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.declarations.timing import DailyPartitions, Job
from lakehouse_dagster.defs.quality_assets import quarantine_spec
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.quality.history import DATA_QUALITY
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import PartitionWindow
from lakehouse_dagster.units.writes import replace_partitions
from lakehouse_dagster_tests.units import UnitFailed, run_table

NAME = TableName("silver", "daily_amounts")
TOLERANCE = 0.25
SCHEMA = "d DATE, id BIGINT, amount BIGINT, flag STRING"


def day(n: int) -> date:
    return date(2026, 12, n)


# 12-01: its only row fails (over the tolerance); 12-02: 1 of 4 fails (at the tolerance);
# 12-03..12-05: none fails. Over the five days, 2 of 12 rows fail: within the tolerance.
ROWS = (
    [(day(1), 1, -5, "n")]
    + [(day(2), 10 + i, -1 if i == 0 else 3, "y") for i in range(4)]
    + [(day(d), 10 * d + i, 7, "y") for d in (3, 4, 5) for i in range(2)]
    + [(day(3), 99, 8, "n")]  # fails only the warn expectation of the quarantine test
)
FRAME = pd.DataFrame(ROWS, columns=["d", "id", "amount", "flag"])
FRAME["amount_fails"] = FRAME["amount"] < 0


def build(context: UnitContext) -> UnitResult:
    window = context.partition_window()
    assert window is not None
    return replace_partitions(context, context.spark.createDataFrame(ROWS, SCHEMA).where(window.condition()))


def daily_table(*expectations: Expectation) -> Table:
    partitions = DailyPartitions("d", "d", day(1), Job("daily_amounts_job", "test"))
    return Table(NAME, "test table", build=build, partitions=partitions, expectations=expectations)


THRESHOLDS = Thresholds({str(NAME): {"amount_ok": TOLERANCE}})


def window(first: int, last: int) -> PartitionWindow:
    return PartitionWindow(day(first), day(last) + timedelta(days=1))


def rows_of(first: int, last: int) -> pd.DataFrame:
    return FRAME[(FRAME["d"] >= day(first)) & (FRAME["d"] <= day(last))]


def days_over_tolerance(first: int, last: int) -> list[str]:
    """The oracle: the days of the window whose share of negative amounts exceeds the tolerance."""
    shares = rows_of(first, last).groupby("d")["amount_fails"].mean()
    return sorted(d.isoformat() for d, share in shares.items() if share > TOLERANCE)


def outcome(result: UnitResult, name: str):
    return next(check for check in result.checks if check.name == name)


@pytest.mark.parametrize(("first", "last"), [(1, 1), (1, 5), (2, 5), (2, 2)])
def test_a_fail_expectation_judges_its_tolerance_day_by_day_whatever_the_range(
    tables: DeltaTables, first: int, last: int
) -> None:
    table = daily_table(Expectation("amount_ok", "amount >= 0", Action.FAIL))
    over = days_over_tolerance(first, last)

    if over:
        with pytest.raises(UnitFailed) as failed:
            run_table(tables, table, partition=window(first, last), thresholds=THRESHOLDS)
        message = str(failed.value)
        assert "ExpectationFailedError" in message and all(d in message for d in over), message
        assert not outcome(failed.value.result, "amount_ok").passed
        assert tables.version(NAME) is None, "nothing was written"
    else:
        result = run_table(tables, table, partition=window(first, last), thresholds=THRESHOLDS)
        assert outcome(result, "amount_ok").passed
        assert sorted(r["id"] for r in tables.read(NAME).collect()) == sorted(rows_of(first, last)["id"])


@pytest.mark.parametrize("action", [Action.WARN, Action.DROP])
def test_warn_and_drop_checks_judge_their_tolerance_day_by_day(tables: DeltaTables, action: Action) -> None:
    table = daily_table(Expectation("amount_ok", "amount >= 0", action))
    single = {
        d: outcome(
            run_table(tables, table, partition=window(d, d), thresholds=THRESHOLDS), "amount_ok"
        ).passed
        for d in range(1, 6)
    }
    ranged = outcome(run_table(tables, table, partition=window(1, 5), thresholds=THRESHOLDS), "amount_ok")

    over = days_over_tolerance(1, 5)
    assert over == ["2026-12-01"]
    assert single == {d: days_over_tolerance(d, d) == [] for d in range(1, 6)}
    assert ranged.passed is False and ranged.passed == all(single.values())
    assert ranged.metadata["days_over_tolerance"] == over
    assert ranged.metadata["failed_records"] == int(FRAME["amount_fails"].sum())
    assert "2026-12-01 (1 of 1 rows)" in ranged.description, ranged.description


def test_a_failed_range_run_records_its_quality_history_day_by_day(tables: DeltaTables) -> None:
    table = daily_table(
        Expectation("amount_ok", "amount >= 0", Action.FAIL),
        Expectation("flag_ok", "flag = 'y'", Action.WARN),
    )
    with pytest.raises(UnitFailed):  # no tolerance; 12-06 has no rows
        run_table(tables, table, partition=PartitionWindow(day(1), day(7)), thresholds=Thresholds())

    history = {
        (r["partition"], r["expectation"], r["passed"], r["failed"])
        for r in tables.read(DATA_QUALITY).collect()
    }
    expected = set()
    for d in range(1, 7):
        rows = FRAME[FRAME["d"] == day(d)]
        for name, fails in (("amount_ok", rows["amount"] < 0), ("flag_ok", rows["flag"] != "y")):
            expected.add((day(d).isoformat(), name, int((~fails).sum()), int(fails.sum())))
    assert history == expected


def test_quarantined_rows_list_the_drop_expectations_they_failed_as_the_asset_says(
    tables: DeltaTables, layout
) -> None:
    drop, warn = (
        Expectation("amount_ok", "amount >= 0", Action.DROP),
        Expectation("flag_ok", "flag = 'y'", Action.WARN),
    )
    table = daily_table(drop, warn)
    run_table(tables, table, partition=window(1, 5), thresholds=Thresholds())

    quarantined = {
        r["id"]: list(r["_failed_expectations"]) for r in tables.read(quarantine_table(NAME)).collect()
    }
    assert quarantined == {int(i): ["amount_ok"] for i in FRAME[FRAME["amount_fails"]]["id"]}
    assert any(FRAME[FRAME["amount_fails"]]["flag"] != "y"), (
        "a quarantined row fails the warn expectation too"
    )
    description = quarantine_spec(Domain("d", "test", (table,)), table, layout).description
    assert "the drop expectations it failed (_failed_expectations)" in description, description
