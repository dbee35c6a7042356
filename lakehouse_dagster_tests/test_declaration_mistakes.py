"""Declaration mistakes are refused when the registry loads, naming the table, setting and column,
instead of loading fine and acting otherwise (or failing) at run time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from lakehouse_dagster.cdc.spec import AutoCdc, CdcConfig
from lakehouse_dagster.declarations.maintenance import Maintenance
from lakehouse_dagster.declarations.table import Domain, Registry, Table
from lakehouse_dagster.declarations.timing import Automation, DailyPartitions, Freshness, Job
from lakehouse_dagster.ingest.sources import FileSource, SchemaEvolutionMode
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.checks import Severity, expectation_check_specs
from lakehouse_dagster.quality.expectations import (
    Action,
    Expectation,
    InvalidExpectationError,
    evaluate,
    passing,
)

BRONZE, SILVER, GOLD = (
    TableName("bronze", "things"),
    TableName("silver", "things"),
    TableName("gold", "things"),
)
SOURCE = FileSource(folder="things", columns=("Op", "id", "name", "seq"))
FRESH = Freshness(timedelta(hours=26), timedelta(hours=50))
DEFAULT_JOB = Job("all_job", "every table not partitioned")


def build(context: Any) -> Any: ...


def cdc(**settings: Any) -> CdcConfig:
    return CdcConfig(**{"keys": ("id",), "sequence_by": ("seq",), "columns": SOURCE.columns, **settings})


def bronze(source: FileSource = SOURCE, **declaration: Any) -> Table:
    return Table(BRONZE, "b", source=source, **declaration)


def built(name: TableName = SILVER, **declaration: Any) -> Table:
    return Table(name, "built", build=build, **{"inputs": (BRONZE,), **declaration})


def registry(*tables: Table, job: Job = DEFAULT_JOB) -> Registry:
    return Registry((Domain("d", "d", tables),), job, FRESH)


def days(**settings: Any) -> DailyPartitions:
    return DailyPartitions(
        **{"name": "day", "column": "day", "start": date(2026, 1, 1), "job": Job("days_job", "d"), **settings}
    )


# Actions given as strings ------------------------------------------------------------------------


def test_an_action_given_as_a_string_is_that_action() -> None:
    drop, fail = (
        Expectation("amount_positive", "amount > 0", "drop"),
        Expectation("named", "name IS NOT NULL", "fail"),
    )

    assert drop.action is Action.DROP and fail.action is Action.FAIL
    assert built(expectations=(drop,)).quarantines
    severities = {spec.name: spec.severity for spec in expectation_check_specs((drop, fail))}
    assert severities == {"amount_positive": Severity.WARN, "named": Severity.ERROR}


def test_a_drop_given_as_a_string_is_refused_on_bronze() -> None:
    with pytest.raises(ValueError, match=r"bronze\.things: bronze keeps every landed row"):
        bronze(expectations=(Expectation("id_present", "id IS NOT NULL", "drop"),))


def test_a_misspelt_action_is_refused_naming_the_expectation_and_the_actions() -> None:
    with pytest.raises(
        ValueError, match=r"expectation 'amount_positive': unknown action 'dorp'.*'warn', 'drop', 'fail'"
    ):
        Expectation("amount_positive", "amount > 0", "dorp")


def test_string_actions_drop_rows_and_fail_the_write(spark) -> None:
    frame = spark.createDataFrame([(1, 10), (2, -5)], "id BIGINT, amount BIGINT")
    drop = Expectation("amount_positive", "amount > 0", "drop")

    evaluation = evaluate(frame, (drop,), key_columns=("id",))
    assert [row.id for row in evaluation.kept.collect()] == [1]
    assert [row.id for row in evaluation.dropped.collect()] == [2] and evaluation.dropped_rows == 1
    assert [row.id for row in frame.where(passing((drop,), action="drop")).collect()] == [1]
    with pytest.raises(ValueError, match=r"'amount_positive'.*failed for 1 of 2 rows"):
        evaluate(frame, (Expectation("amount_positive", "amount > 0", "fail"),))


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("amout > 0", r"amout.*missing"),  # a misspelt column
        ("amount > > 0", r"found >"),  # a syntax error
        ("no_such_function(amount) > 0", r"no_such_function"),  # an unknown function
        ("amount", r"a bigint, not a boolean"),  # would pass every non-zero amount
        ("amount IS", r"a bigint, not a boolean"),  # parsed as ``amount AS IS``
    ],
)
def test_a_condition_that_is_not_a_boolean_over_the_columns_names_its_expectation(
    spark, condition: str, reason: str
) -> None:
    frame = spark.createDataFrame([(1, 10), (2, -5)], "id BIGINT, amount BIGINT")
    expectations = (
        Expectation("id_present", "id IS NOT NULL"),
        Expectation("amount_positive", condition, "drop"),
    )

    with pytest.raises(InvalidExpectationError) as raised:
        evaluate(frame, expectations, key_columns=("id",))
    message = str(raised.value)
    assert re.search(rf"expectation 'amount_positive' \({re.escape(condition)}\): .*{reason}", message)
    assert "id_present" not in message and message.endswith("the columns are id, amount")


def test_valid_conditions_of_any_boolean_shape_are_evaluated(spark) -> None:
    frame = spark.createDataFrame([(1, 10), (2, None)], "id BIGINT, amount BIGINT")
    expectations = (
        Expectation("amount_positive", "amount > 0"),
        Expectation("always_null", "NULL"),  # null fails every row, like a false
        Expectation("cast_flag", "CAST(amount > 5 AS BOOLEAN)"),
    )

    failed = {r.expectation.name: r.failed_rows for r in evaluate(frame, expectations).results}
    assert failed == {"amount_positive": 1, "always_null": 2, "cast_flag": 1}


def test_an_automation_given_as_a_string_is_that_automation() -> None:
    assert built(automation="eager").automation is Automation.EAGER
    with pytest.raises(ValueError, match=r"silver\.things: automation='eagre'"):
        built(automation="eagre")


# Columns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"except_columns": ("op",)}, r"CdcConfig\.except_columns: 'op' \(did you mean 'Op'\?\)"),
        ({"keys": ("idd",)}, r"CdcConfig\.keys: 'idd' \(did you mean 'id'\?\)"),
        (
            {"scd_type": 2, "track_history_columns": ("nmae",)},
            r"CdcConfig\.track_history_columns: 'nmae' \(did you mean 'name'\?\)",
        ),
        ({"keys": "id"}, r"keys must be a tuple of column names, got the string 'id'"),
        ({"scd_type": 3}, r"CdcConfig\.scd_type=3: expected 1 or 2"),
    ],
)
def test_cdc_settings_name_the_config_columns(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cdc(**settings)


def test_a_cdc_table_reads_a_bronze_table_fed_by_files_with_its_columns() -> None:
    applied = Table(SILVER, "s", cdc=AutoCdc(GOLD, cdc()))
    with pytest.raises(
        ValueError, match=r"silver\.things: cdc reads gold\.things, which is not a bronze table fed by files"
    ):
        registry(bronze(), built(GOLD), applied)
    narrow = bronze(FileSource("things", columns=("Op", "id", "seq")))
    with pytest.raises(
        ValueError,
        match=r"silver\.things: CdcConfig\.columns: 'name' not among the columns of bronze\.things",
    ):
        registry(narrow, Table(SILVER, "s", cdc=AutoCdc(BRONZE, cdc())))
    misspelt = Table(SILVER, "s", cdc=AutoCdc(BRONZE, cdc(sequence_by=("seqq",))))
    with pytest.raises(
        ValueError,
        match=r"silver\.things: CdcConfig\.sequence_by: 'seqq' \(did you mean 'seq'\?\) not among",
    ):
        registry(bronze(), misspelt)


def test_a_feed_without_op_and_a_sequence_the_target_does_not_keep_are_accepted() -> None:
    """The default exclusion (DMS's ``Op``) may name a column a feed does not have, and the
    sequence is read from the changes whether or not the target keeps it."""
    source = FileSource("things", columns=("id", "name", "ts", "deleted"))
    config = CdcConfig(
        keys=("id",), sequence_by=("ts",), columns=("id", "name"), apply_as_deletes="deleted = 'true'"
    )
    assert config.output_columns[:2] == ("id", "name")
    registry(bronze(source), Table(SILVER, "s", cdc=AutoCdc(BRONZE, config)))


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (
            lambda: bronze(primary_key="id"),
            r"bronze\.things: primary_key must be a tuple of column names, got the string 'id'",
        ),
        (lambda: bronze(primary_key=("idd",)), r"bronze\.things: primary_key: 'idd' \(did you mean 'id'\?\)"),
        (
            lambda: bronze(FileSource("things", columns=("id",), required_columns=("idd",))),
            r"bronze\.things: FileSource\.required_columns: 'idd' \(did you mean 'id'\?\)",
        ),
        (
            lambda: bronze(FileSource("things", columns=("id",), column_types={"iid": "BIGINT"})),
            r"bronze\.things: FileSource\.column_types: 'iid' \(did you mean 'id'\?\)",
        ),
        (
            lambda: bronze(maintenance=Maintenance(zorder_by=("nmae",))),
            r"bronze\.things: Maintenance\.zorder_by: 'nmae' \(did you mean 'name'\?\)",
        ),
        (
            lambda: Table(
                SILVER, "s", cdc=AutoCdc(BRONZE, cdc()), maintenance=Maintenance(zorder_by=("Op",))
            ),
            r"silver\.things: Maintenance\.zorder_by: 'Op' not among the columns id, name, seq",
        ),
        (
            lambda: Table(SILVER, "s", cdc=AutoCdc(BRONZE, cdc()), primary_key=("ID",)),
            r"silver\.things: primary_key: 'ID' \(did you mean 'id'\?\)",
        ),
    ],
)
def test_table_settings_name_its_declared_columns(declare: Callable[[], Table], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        declare()


def test_columns_are_not_checked_where_the_declaration_does_not_declare_them() -> None:
    """A build's columns are its code's; a source without columns takes its files'."""
    assert built(primary_key=("anything",), maintenance=Maintenance(zorder_by=("anything",))).primary_key == (
        "anything",
    )
    assert bronze(FileSource("things"), primary_key=("anything",)).primary_key == ("anything",)
    assert bronze(primary_key=("id", "_source_file")).primary_key == ("id", "_source_file")


# Jobs, partitions and freshness ------------------------------------------------------------------


@pytest.mark.parametrize("job", [DEFAULT_JOB, Job(DEFAULT_JOB.name, "another description", cron="0 5 * * *")])
def test_a_partitioning_in_the_default_job_is_refused_naming_both(job: Job) -> None:
    with pytest.raises(ValueError, match=r"partitioning day: its job all_job is the registry's default job"):
        registry(bronze(), built(partitions=days(job=job)))


def test_two_partitionings_of_one_name_are_refused_naming_both() -> None:
    later = days(start=date(2026, 2, 1))
    with pytest.raises(
        ValueError, match=r"two partitionings are named day: .*start 2026-01-01.* and .*start 2026-02-01"
    ):
        registry(bronze(), built(partitions=days()), built(GOLD, partitions=later))
    other = days(name="other_day")
    with pytest.raises(ValueError, match=r"partitionings day and other_day share the job days_job"):
        registry(bronze(), built(partitions=days()), built(GOLD, partitions=other))


def test_days_from_names_a_declared_table_and_column() -> None:
    with pytest.raises(
        ValueError,
        match=r"partitioning day: days_from reads silver\.thngs, which no domain declares "
        r"\(did you mean silver\.things\?\)",
    ):
        registry(bronze(), built(partitions=days(days_from=(TableName("silver", "thngs"), "day"))))
    with pytest.raises(ValueError, match=r"partitioning day: days_from: 'sq' \(did you mean 'seq'\?\)"):
        registry(bronze(), built(partitions=days(days_from=(BRONZE, "sq"))))


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (
            lambda: Freshness(timedelta(hours=50), timedelta(hours=2)),
            r"Freshness\.warn_after \(2 days, 2:00:00\) must be shorter than fail_after \(2:00:00\)",
        ),
        (
            lambda: Freshness(timedelta(hours=-1), timedelta(hours=2)),
            r"Freshness\.warn_after \(-1 day, 23:00:00\): expected .* at least 1 minute",
        ),
        (lambda: Freshness(timedelta(hours=1), timedelta(0)), r"Freshness\.fail_after \(0:00:00\)"),
        (lambda: Job("my-job", "j"), r"job name 'my-job' must be letters, digits and underscores"),
        (lambda: days(schedule_hour=25), r"partitioning day: schedule_hour=25: expected an hour 0-23"),
        (lambda: days(name="order-day"), r"partitioning name 'order-day'"),
        (
            lambda: registry(bronze(), built(inputs=BRONZE)),
            r"silver\.things: inputs must be a tuple of table names",
        ),
        (
            lambda: Registry(
                (Domain("d", "d", (bronze(),)), Domain("d", "d", (built(),))), DEFAULT_JOB, FRESH
            ),
            "domains declared twice: d",
        ),
    ],
)
def test_timing_mistakes_are_refused_naming_the_setting(declare: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        declare()


def test_valid_declarations_still_load() -> None:
    loaded = registry(
        bronze(primary_key=("id",), maintenance=Maintenance(zorder_by=("id",))),
        Table(
            SILVER,
            "s",
            cdc=AutoCdc(BRONZE, cdc(scd_type=2, track_history_columns=("name",))),
            primary_key=("id", "__START_AT"),
        ),
        built(GOLD, inputs=(SILVER,), partitions=days(schedule_hour=0, days_from=(SILVER, "seq"))),
    )
    assert [job.name for job in loaded.jobs()] == ["all_job", "days_job"]
    assert cdc(sequence_by="seq").sequence_by == ("seq",)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"folder": "../elsewhere"}, r"FileSource folder '\.\./elsewhere': expected a folder of the landing"),
        ({"folder": "/etc"}, r"FileSource folder '/etc'"),
        ({"folder": " "}, r"FileSource folder ' '"),
        (
            {"folder": "things", "column_types": {"amount": "BIGINTEGER"}},
            r"FileSource\(things\)\.column_types\['amount'\]: unknown column type 'BIGINTEGER'",
        ),
        (
            {"folder": "things", "column_types": {"amount": "DECIMAL(40,2)"}},
            r"column_types\['amount'\]: precision",
        ),
        ({"folder": "things", "schema_evolution": "add"}, r"schema_evolution='add'; expected one of"),
        ({"folder": "things", "max_files_per_batch": 0}, r"max_files_per_batch=0: expected a positive"),
    ],
)
def test_a_file_source_that_cannot_mean_what_it_says_is_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FileSource(**settings)


def test_a_file_sources_mode_given_as_a_string_is_that_mode() -> None:
    assert FileSource("things", schema_evolution="rescue").schema_evolution is SchemaEvolutionMode.RESCUE


def test_a_hint_for_a_column_the_files_may_add_later_is_accepted_unless_it_is_a_near_miss() -> None:
    """With ``addNewColumns`` a column may arrive after the declaration: a hint for it is fine,
    but ``Loyalty_Tier`` beside ``loyalty_tier`` is a typo; other modes never add a column."""
    declared = ("id", "loyalty_tier")
    bronze(FileSource("things", columns=declared, column_types={"signup_date": "DATE"}))
    with pytest.raises(ValueError, match=r"column_types: 'Loyalty_Tier' \(did you mean 'loyalty_tier'\?\)"):
        bronze(FileSource("things", columns=declared, column_types={"Loyalty_Tier": "STRING"}))
    with pytest.raises(ValueError, match=r"column_types: 'signup_date' not among the columns"):
        bronze(
            FileSource(
                "things", columns=declared, column_types={"signup_date": "DATE"}, schema_evolution="rescue"
            )
        )
