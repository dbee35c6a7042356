"""Expectations (warn / drop / fail), quarantine, quality history, thresholds and blocking checks."""

from __future__ import annotations

import logging
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from pyspark.sql import functions as F
from pyspark.sql.connect.client.core import SparkConnectClient

from lakehouse_dagster.declarations.table import Domain, Registry, Table
from lakehouse_dagster.declarations.timing import DailyPartitions, Freshness, Job
from lakehouse_dagster.definitions import build_definitions, is_typo_of
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DateWindow, SchemaMergeError, sql_type
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality import rules
from lakehouse_dagster.quality.expectations import Action, Expectation, evaluate
from lakehouse_dagster.quality.history import DATA_QUALITY
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster.quality.table_checks import row_count_anomaly
from lakehouse_dagster.quality.thresholds import Thresholds, ThresholdsError
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import PartitionWindow, UnitRequest
from lakehouse_dagster.units.run import run_unit as run_table_unit
from lakehouse_dagster_tests.units import AS_OF

TABLE = TableName("silver", "payments")
ROWS = [
    (i, f"user{i}@x.com" if i % 4 else "not-an-email", -5 if i in (3, 7) else 10 * i) for i in range(1, 13)
]
SCHEMA = "id BIGINT, email STRING, amount BIGINT"
VALID_EMAIL = Expectation("valid_email", "email RLIKE '^[^@ ]+@[^@ ]+$'", Action.WARN)


def expected(predicate) -> set[int]:
    return {row[0] for row in ROWS if predicate(row)}


BAD_EMAILS = expected(lambda r: "@" not in r[1])
NEGATIVE = expected(lambda r: r[2] < 0)


def build_payments(context: UnitContext) -> UnitResult:
    evaluation = context.evaluate(context.spark.createDataFrame(ROWS, SCHEMA))
    context.tables.overwrite(TABLE, evaluation.kept)
    quality = context.quarantine_and_report(evaluation)
    return context.result(quality.metadata, quality.outcomes)


def payments_unit(*expectations: Expectation, primary_key: tuple[str, ...] = ("id",)) -> Table:
    return Table(
        TABLE, "test table", build=build_payments, expectations=expectations, primary_key=primary_key
    )


def run_unit(spark, layout, unit: Table, thresholds: Thresholds | None = None, partition=None) -> UnitResult:
    from lakehouse_dagster.lake.delta import DeltaTables

    return run_table_unit(
        UnitRequest(str(unit.name), AS_OF, run_id="r1", partition=partition),
        unit,
        DeltaTables(spark, layout),
        thresholds if thresholds is not None else Thresholds(),
        logging.getLogger("t"),
    )


def outcome(result: UnitResult, name: str):
    return next(check for check in result.checks if check.name == name)


def test_warn_keeps_every_row_and_counts_the_failures(spark, layout, tables) -> None:
    result = run_unit(spark, layout, payments_unit(VALID_EMAIL))

    assert tables.read(TABLE).count() == len(ROWS)
    check = outcome(result, "valid_email")
    assert (check.passed, check.severity.value) == (False, "WARN")
    assert check.metadata["failed_records"] == len(BAD_EMAILS)
    assert check.metadata["passed_records"] == len(ROWS) - len(BAD_EMAILS)
    assert set(check.metadata["sample_failing_keys"]) <= {str(i) for i in BAD_EMAILS}
    assert not tables.exists(quarantine_table(TABLE))


def test_drop_moves_failing_rows_to_quarantine_and_input_equals_output_plus_quarantine(
    spark, layout, tables
) -> None:
    drop = Expectation("amount_not_negative", "amount >= 0", Action.DROP)

    result = run_unit(spark, layout, payments_unit(VALID_EMAIL, drop))

    kept = {row["id"] for row in tables.read(TABLE).collect()}
    quarantined = tables.read(quarantine_table(TABLE)).collect()
    assert kept == expected(lambda r: r[2] >= 0)
    assert {row["id"] for row in quarantined} == NEGATIVE
    assert len(kept) + len(quarantined) == len(ROWS)
    assert all(row["_failed_expectations"] == ["amount_not_negative"] for row in quarantined)
    assert all(row["_run_id"] == "r1" and row["_quarantined_at"] is not None for row in quarantined)
    assert result.metadata["lakehouse/rows_quarantined"] == len(NEGATIVE)
    assert result.metadata["quality/amount_not_negative/failed_records"] == len(NEGATIVE)
    assert outcome(result, "amount_not_negative").severity.value == "WARN"


def test_a_rerun_replaces_the_quarantine_instead_of_adding_to_it(spark, layout, tables) -> None:
    unit = payments_unit(Expectation("amount_not_negative", "amount >= 0", Action.DROP))
    run_unit(spark, layout, unit)
    run_unit(spark, layout, unit)

    assert tables.read(quarantine_table(TABLE)).count() == len(NEGATIVE)


def test_fail_stops_before_the_write_and_names_expectation_count_and_keys(spark, layout, tables) -> None:
    run_unit(spark, layout, payments_unit(VALID_EMAIL))
    version = tables.version(TABLE)
    fail = Expectation("amount_not_negative", "amount >= 0", Action.FAIL)

    failed = run_unit(spark, layout, payments_unit(VALID_EMAIL, fail))

    assert failed.error is not None and failed.error.kind == "ExpectationFailedError"
    assert not outcome(failed, "amount_not_negative").passed, "the failed expectation is reported as a check"
    message = failed.error.message
    assert "'amount_not_negative'" in message and f"failed for {len(NEGATIVE)} of {len(ROWS)} rows" in message
    assert all(str(i) in message for i in NEGATIVE), message
    assert tables.version(TABLE) == version, "nothing was committed"
    history = tables.read(DATA_QUALITY).where("expectation = 'amount_not_negative'").collect()
    assert [(row["failed"], row["action"]) for row in history] == [(len(NEGATIVE), "fail")]


def test_thresholds_tolerate_a_share_of_failures_without_code_changes(spark, layout, tmp_path: Path) -> None:
    share = len(BAD_EMAILS) / len(ROWS)
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(f"silver.payments:\n  valid_email: {share}\n")
    strict = tmp_path / "strict.yaml"
    strict.write_text(f"silver.payments:\n  valid_email: {share / 2}\n")
    unit = payments_unit(VALID_EMAIL)

    assert outcome(run_unit(spark, layout, unit, Thresholds.load(lenient)), "valid_email").passed
    assert not outcome(run_unit(spark, layout, unit, Thresholds.load(strict)), "valid_email").passed


def test_a_threshold_file_with_a_wrong_share_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("silver.payments:\n  valid_email: 5\n")

    with pytest.raises(ThresholdsError, match=r"silver.payments.valid_email must be a share"):
        Thresholds.load(wrong)


def test_every_materialisation_appends_its_results_to_the_quality_history(spark, layout, tables) -> None:
    unit = payments_unit(VALID_EMAIL, Expectation("amount_not_negative", "amount >= 0", Action.DROP))
    run_unit(spark, layout, unit)
    run_unit(spark, layout, unit)

    history = tables.read(DATA_QUALITY).collect()
    assert sorted(
        (r["asset"], r["expectation"], r["action"], r["passed"], r["failed"]) for r in history
    ) == sorted(
        [("silver.payments", "valid_email", "warn", len(ROWS) - len(BAD_EMAILS), len(BAD_EMAILS))] * 2
        + [("silver.payments", "amount_not_negative", "drop", len(ROWS) - len(NEGATIVE), len(NEGATIVE))] * 2
    )
    assert {r["run_id"] for r in history} == {"r1"}


def test_the_primary_key_check_counts_null_and_duplicate_keys(spark, layout, tables) -> None:
    def run(context: UnitContext) -> UnitResult:
        frame = context.spark.createDataFrame(
            [(1, "a"), (1, "b"), (2, "c"), (None, "d")], "id BIGINT, v STRING"
        )
        context.tables.overwrite(TABLE, frame)
        return context.result({})

    unit = Table(TABLE, "t", build=run, primary_key=("id",))
    check = outcome(run_unit(spark, layout, unit), "primary_key")

    assert (check.passed, check.metadata["null_keys"], check.metadata["duplicate_rows"]) == (False, 1, 1)


@pytest.mark.parametrize("segments", [["active"], ["active", "active"], ["active", "lapsed", "active"], []])
def test_the_primary_key_check_of_a_table_with_required_key_columns(spark, layout, tables, segments) -> None:
    """Key columns that cannot be null (a gold table's group-by keys): the engine failed an
    aggregate over the keys' group-by when such a Delta table held one key."""

    def run(context: UnitContext) -> UnitResult:
        frame = context.spark.createDataFrame([(s,) for s in segments], "segment STRING")
        required = frame.select(
            F.coalesce("segment", F.lit("?")).alias("segment"), F.lit("US").alias("country")
        )
        context.tables.overwrite(TABLE, required)
        return context.result({})

    unit = Table(TABLE, "t", build=run, primary_key=("segment", "country"))
    check = outcome(run_unit(spark, layout, unit), "primary_key")

    duplicates = len(segments) - len(set(segments))
    assert (check.passed, check.metadata["null_keys"], check.metadata["duplicate_rows"]) == (
        duplicates == 0,
        0,
        duplicates,
    )


def count_spark_executions(monkeypatch) -> list[int]:
    calls = [0]
    original = SparkConnectClient._execute_and_fetch

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SparkConnectClient, "_execute_and_fetch", counted)
    return calls


def test_expectations_are_evaluated_in_one_pass_whatever_their_number(spark, monkeypatch) -> None:
    frame = spark.createDataFrame(ROWS, SCHEMA)
    many = [Expectation(f"amount_over_{i}", f"amount > {i}", Action.WARN) for i in range(20)]
    calls = count_spark_executions(monkeypatch)

    one = evaluate(frame, many[:1], key_columns=("id",))
    after_one = calls[0]
    twenty = evaluate(frame, many, key_columns=("id",))

    assert after_one == 1 and calls[0] - after_one == 1, "one Spark query for the counts and samples"
    assert one.results[0].failed_rows == twenty.results[0].failed_rows == len(expected(lambda r: r[2] <= 0))
    assert [r.failed_rows for r in twenty.results] == [
        len(expected(lambda r, i=i: r[2] <= i)) for i in range(20)
    ]


def test_a_failed_error_check_keeps_downstream_assets_from_running(sail_url, layout, monkeypatch) -> None:
    def duplicated(context: UnitContext) -> UnitResult:
        context.tables.overwrite(TABLE, context.spark.createDataFrame([(1,), (1,)], "id BIGINT"))
        return context.result({})

    downstream_ran = []

    def downstream(context: UnitContext) -> UnitResult:
        downstream_ran.append(True)
        raise AssertionError("must not run")

    settings = LakehouseSettings(Deployment.TEST, layout, EngineSettings(remote_url=sail_url))
    upstream_unit = Table(TABLE, "t", build=duplicated, primary_key=("id",))
    downstream_unit = Table(TableName("gold", "payments_daily"), "d", build=downstream, inputs=(TABLE,))
    registry = Registry(
        domains=(Domain("test", "test tables", (upstream_unit, downstream_unit)),),
        default_job=Job("test_job", "every table"),
        default_freshness=Freshness(timedelta(hours=1), timedelta(hours=2)),
    )
    monkeypatch.setattr(sys.modules[__name__], "BLOCKING_REGISTRY", registry, raising=False)
    defs = build_definitions(settings, f"{__name__}:BLOCKING_REGISTRY")

    result = dg.materialize(
        [defs.get_assets_def(dg.AssetKey(t.name.key_path)) for t in registry.tables],
        resources=defs.resources,
        raise_on_error=False,
    )

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"primary_key", "column_schema_change"}
    evaluation = evaluations["primary_key"]
    assert (evaluation.check_name, evaluation.passed, evaluation.severity) == (
        "primary_key",
        False,
        dg.AssetCheckSeverity.ERROR,
    )
    assert downstream_ran == []
    assert not result.asset_materializations_for_node("gold__payments_daily")


def test_row_count_anomaly_compares_a_day_with_the_median_of_the_days_before(spark, layout, tables) -> None:
    rows_by_day = {date(2026, 11, 1) + timedelta(days=i): 100 for i in range(7)}

    def run(context: UnitContext) -> UnitResult:
        window = context.request.require_partition()
        rows = [
            (day, n)
            for day, count in rows_by_day.items()
            if window.start <= day < window.end
            for n in range(count)
        ]
        frame = context.spark.createDataFrame(rows, "order_date DATE, n INT")
        context.tables.replace_window(TABLE, frame, context.partition_window(), partition_by=("order_date",))
        return context.result({})

    days = DailyPartitions("order_date", "order_date", date(2026, 1, 1), Job("days_job", "by day"))
    unit = Table(TABLE, "t", build=run, partitions=days, checks=(row_count_anomaly(),))

    def build(first: date, last: date) -> UnitResult:
        return run_unit(spark, layout, unit, partition=PartitionWindow(first, last + timedelta(days=1)))

    assert outcome(build(date(2026, 11, 1), date(2026, 11, 7)), "row_count_anomaly").passed, (
        "too little history"
    )
    rows_by_day[date(2026, 11, 8)] = 90
    assert outcome(build(date(2026, 11, 8), date(2026, 11, 8)), "row_count_anomaly").passed
    rows_by_day[date(2026, 11, 8)] = 10
    check = outcome(build(date(2026, 11, 8), date(2026, 11, 8)), "row_count_anomaly")
    assert not check.passed
    assert check.metadata["anomalies"] == {"2026-11-08": {"rows": 10, "median_before": 100}}


@pytest.mark.parametrize(
    ("failed", "tolerance", "action", "passed", "text"),
    [
        (194, 0.03, Action.WARN, True, "194 of 20006 rows failed x > 0, within the tolerated 3% (kept)"),
        (
            109,
            0.01,
            Action.DROP,
            True,
            "109 of 20006 rows failed x > 0, within the tolerated 1% (dropped to quarantine)",
        ),
        (
            2_001,
            0.1,
            Action.WARN,
            False,
            "2001 of 20006 rows failed x > 0, more than the tolerated 10% (kept)",
        ),
        (
            1,
            0.0,
            Action.FAIL,
            False,
            "1 of 20006 rows failed x > 0, more than the tolerated 0% (nothing was written)",
        ),
        (0, 0.0, Action.WARN, True, "All 20006 rows pass x > 0"),
    ],
)
def test_a_check_text_says_what_its_counts_mean(failed, tolerance, action, passed, text) -> None:
    from lakehouse_dagster.quality.checks import expectation_outcomes
    from lakehouse_dagster.quality.expectations import ExpectationResult

    result = ExpectationResult(
        Expectation("x_positive", "x > 0", action), 20_006 - failed, failed, [], tolerance
    )
    (outcome,) = expectation_outcomes([result])
    assert (outcome.passed, outcome.description) == (passed, text)


def test_the_packaged_thresholds_name_declared_tables_and_checks_and_a_typo_is_refused(
    tmp_path, sail_url
) -> None:
    from lakehouse_dagster.registry import REGISTRY

    packaged = Thresholds.load()
    assert packaged.unknown_tables(str(table.name) for table in REGISTRY.tables) == []
    checks = {str(t.name): [spec.name for spec in t.check_specs()] for t in REGISTRY.tables}
    assert packaged.unknown_checks(checks) == []

    typo = tmp_path / "thresholds.yaml"
    typo.write_text("silver.customers:\n  valid_emial: 0.05\n")
    settings = LakehouseSettings.from_env(
        {"LAKEHOUSE_ROOT": str(tmp_path), "LAKEHOUSE_QUALITY_THRESHOLDS": str(typo)}
    )
    with pytest.raises(
        ThresholdsError, match=r"thresholds.yaml: no such check: silver\.customers\.valid_emial"
    ):
        build_definitions(settings)

    env = {"LAKEHOUSE_ROOT": str(tmp_path), "LAKEHOUSE_QUALITY_THRESHOLDS": str(typo)}
    typo.write_text("silver.customer:\n  valid_email: 0.05\nsilver.of_another_location:\n  rule: 0.1\n")
    with pytest.raises(
        ThresholdsError, match=r"no table silver\.customer here; did you mean silver\.customers\?"
    ):
        build_definitions(LakehouseSettings.from_env(env))
    typo.write_text("silver.of_another_location:\n  rule: 0.1\n")
    assert build_definitions(LakehouseSettings.from_env(env)).resolve_job_def("lakehouse_job") is not None


def build_volatile(context: UnitContext) -> UnitResult:
    from pyspark.sql import functions as F

    from lakehouse_dagster.units.writes import overwrite_table

    # uuid() differs at every evaluation: a build computed twice would judge other rows than it writes.
    frame = context.spark.range(2_000).select("id", F.expr("uuid()").alias("token"))
    return overwrite_table(context, frame)


def test_a_rebuilt_table_writes_and_quarantines_the_very_rows_its_expectations_judged(tables) -> None:
    from lakehouse_dagster_tests.units import run_table

    table = Table(
        TableName("gold", "volatile"),
        "Rows whose values change at every evaluation.",
        build=build_volatile,
        expectations=(Expectation("low_token", "token < '8'", Action.DROP, "a token below 8"),),
        primary_key=("id",),
    )
    result = run_table(tables, table)

    written = {r.id: r.token for r in tables.read(table.name).collect()}
    quarantined = {r.id: r.token for r in tables.read(quarantine_table(table.name)).collect()}
    assert all(token < "8" for token in written.values())
    assert all(token >= "8" for token in quarantined.values())
    assert sorted([*written, *quarantined]) == list(range(2_000)), "each row written or quarantined, once"
    assert result.metadata["lakehouse/rows_quarantined"] == len(quarantined) > 0


DAY = DateWindow("d", date(2026, 1, 1), date(2026, 1, 2))


@pytest.mark.parametrize("write", ["replace a window", "insert the missing rows"])
def test_a_column_the_input_gains_reaches_the_table_and_the_quarantine(spark, tables, write: str) -> None:
    """Neither a ``replaceWhere`` nor an ``INSERT *`` may drop a new column silently: the
    quarantine keeps every column of a dropped row, however the source grew."""
    first = spark.sql("SELECT DATE'2026-01-01' AS d, 1L AS id, 5L AS amt")
    grown = spark.sql("SELECT DATE'2026-01-01' AS d, 2L AS id, -1L AS amt, 'new info' AS `Extra Info`")
    for frame in (first, grown):
        if write == "replace a window":
            tables.replace_window(TABLE, frame, DAY, partition_by=("d",))
        else:
            tables.insert_missing(TABLE, frame, ("id",))

    rows = {row["id"]: row.asDict() for row in tables.read(TABLE).collect()}
    assert rows[2]["Extra Info"] == "new info"
    assert rows.get(1, {"Extra Info": None})["Extra Info"] is None, "older rows read null"
    assert tables.add_new_columns(TABLE, grown) == [], "added once"


def test_one_of_holds_exactly_its_values_whatever_characters_they_have(spark) -> None:
    allowed = ["it's", "back\\slash", "plain", "é ü"]
    offered = [*allowed, "its", "backslash", "back\\\\slash", "plain ", "it''s"]
    rows = spark.createDataFrame([(value,) for value in offered], "value STRING")
    rule = rules.one_of("known", "value", allowed, Action.WARN, "a known value")

    passing = {row["value"] for row in rows.where(F.expr(rule.condition)).collect()}

    assert passing == set(allowed)


@pytest.mark.parametrize("write", ["replace a window", "insert the missing rows"])
def test_a_frame_without_a_column_the_table_gained_writes_it_null(spark, tables, write: str) -> None:
    """A release that added a column, rolled back: its frames lack the column."""
    first = spark.sql("SELECT DATE'2026-01-03' AS d, 3L AS id, 1L AS amt")
    grown = spark.sql("SELECT DATE'2026-01-01' AS d, 1L AS id, 5L AS amt, 'x' AS note")
    older = spark.sql("SELECT DATE'2026-01-02' AS d, 2L AS id, 7L AS amt")
    days = [DateWindow("d", date(2026, 1, day), date(2026, 1, day + 1)) for day in (3, 1, 2)]
    for frame, window in zip((first, grown, older), days, strict=True):
        if write == "replace a window":
            tables.replace_window(TABLE, frame, window, partition_by=("d",))
        else:
            tables.insert_missing(TABLE, frame, ("id",))

    notes = {row["id"]: row["note"] for row in tables.read(TABLE).collect()}
    assert notes == {1: "x", 2: None, 3: None}


def test_a_new_column_of_no_type_is_refused_and_the_table_stays_readable(spark, tables) -> None:
    tables.replace_window(
        TABLE, spark.sql("SELECT DATE'2026-01-01' AS d, 1L AS id"), DAY, partition_by=("d",)
    )
    untyped = spark.sql("SELECT DATE'2026-01-01' AS d, 2L AS id").withColumn("later", F.lit(None))

    with pytest.raises(SchemaMergeError, match="later have no type"):
        tables.replace_window(TABLE, untyped, DAY, partition_by=("d",))

    assert [row["id"] for row in tables.read(TABLE).collect()] == [1]


def test_nested_field_names_are_quoted_in_spark_sql_types(spark) -> None:
    frame = spark.sql("SELECT named_struct('user-agent', 'x', 'first name', 1) AS headers")
    data_type = frame.schema["headers"].dataType
    assert sql_type(data_type) == "struct<`user-agent`:string,`first name`:int>"
    assert spark.sql(f"SELECT CAST(NULL AS {sql_type(data_type)}) AS h").schema["h"].dataType == data_type


@pytest.mark.parametrize(
    ("written", "typo"),
    [
        ("silver.customer", True),
        ("silver.cusotmers", True),
        ("silver.custumers", True),
        ("silver.customers_eu", False),
        ("gold.customer_segments2", False),
        ("gold.daily_sales_v2", False),
        ("silver.orders", False),
    ],
)
def test_a_thresholds_table_is_a_typo_only_when_it_is_one(written: str, typo: bool) -> None:
    declared = ["silver.customers", "gold.customer_segments", "gold.daily_sales", "silver.sales_orders"]
    assert any(is_typo_of(written, name) for name in declared) is typo


def test_a_required_column_the_frame_lacks_is_refused_naming_it(spark, tables) -> None:
    tables.replace_window(
        TABLE, spark.sql("SELECT DATE'2026-01-01' AS d, 1L AS id, 'x' AS note"), DAY, partition_by=("d",)
    )  # created from literals: note is NOT NULL
    with pytest.raises(SchemaMergeError, match="note may not be null"):
        tables.replace_window(TABLE, spark.sql("SELECT DATE'2026-01-01' AS d, 2L AS id"), DAY)
    assert [row["id"] for row in tables.read(TABLE).collect()] == [1]


def test_a_struct_with_a_field_named_like_void_is_a_typed_column(spark, tables) -> None:
    tables.replace_window(
        TABLE, spark.sql("SELECT DATE'2026-01-01' AS d, 1L AS id"), DAY, partition_by=("d",)
    )
    grown = spark.sql(
        "SELECT DATE'2026-01-01' AS d, 2L AS id, named_struct('voided', true, 'n', 1) AS payment"
    )
    tables.replace_window(TABLE, grown, DAY)
    assert tables.read(TABLE).collect()[0]["payment"]["voided"] is True


def test_two_writers_adding_the_same_column_both_write_and_it_is_added_once(spark, tables) -> None:
    """The second writer read the schema before the first added the column: its addition fails,
    it finds the column there, and writes; nothing doubled, nothing lost."""
    tables.replace_window(
        TABLE, spark.sql("SELECT DATE'2026-01-01' AS d, 1L AS id"), DAY, partition_by=("d",)
    )
    stale = tables.read(TABLE).schema.fields
    grown = spark.sql("SELECT DATE'2026-01-01' AS d, 2L AS id, 'x' AS note")
    assert tables.add_new_columns(TABLE, grown) == ["note"]  # the first writer

    assert tables.add_new_columns(TABLE, grown, stale) == ["note"], "the second, on its stale schema"
    tables.replace_window(TABLE, grown, DAY)

    assert [field.name for field in tables.read(TABLE).schema.fields].count("note") == 1
    assert [(row["id"], row["note"]) for row in tables.read(TABLE).collect()] == [(2, "x")]
