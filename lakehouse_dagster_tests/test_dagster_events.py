"""Unit reports to Dagster events, without an engine: a canned report through the real asset.

A partitioned write shows each day's own figures on that day, and the figures of the whole write
once; the tables written besides are materialised or observed; the schema-change check compares
with the previous write, not with the day before in the same run.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest

from lakehouse_dagster.catalog.glue import GlueCatalog
from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.declarations.timing import DailyPartitions, Job
from lakehouse_dagster.defs.assets import table_asset
from lakehouse_dagster.defs.partitions import partitions_definition, range_tags
from lakehouse_dagster.defs.schema_change import SCHEMA_CHANGE_CHECK, schema_change_result
from lakehouse_dagster.lake.delta import ColumnInfo
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.checks import CheckOutcome, Severity
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.runners.base import UnitRunner
from lakehouse_dagster.units.report import RelatedTable, UnitResult
from lakehouse_dagster_tests.events import UnpublishedMetrics

FACTS = TableName("silver", "facts")
DAYS = DailyPartitions("day", "day", date(2026, 11, 1), Job("facts_job", "by day"))
FACTS_TABLE = Table(
    FACTS,
    "facts by day",
    build=lambda context: None,
    partitions=DAYS,
    expectations=(Expectation("positive", "amount > 0", Action.WARN),),
)
COLUMNS = [ColumnInfo("day", "date", False), ColumnInfo("amount", "decimal(12,2)", True)]


def rows_of(day: date) -> int:
    """What the canned unit reports for a day: its day of the month, so no two days agree."""
    return day.day


class CannedRunner(UnitRunner):
    """Reports a write of the request's days as a unit would, with its quarantine and history."""

    #: The columns written, as ``name:type``.
    columns: list[str] = [f"{c.name}:{c.type}" for c in COLUMNS]

    def run(self, context, table, request) -> UnitResult:
        days = request.require_partition().days()
        return UnitResult(
            table=str(table.name),
            uri="/lake/silver/facts",
            metadata={"lakehouse/table_rows": 1000, "lakehouse/range": request.require_partition().label()},
            columns=[ColumnInfo(*column.split(":"), True) for column in self.columns],
            checks=[CheckOutcome("positive", True, Severity.WARN, "All rows pass")],
            partitions={
                day.isoformat(): {"dagster/row_count": rows_of(day), "quality/positive/failed_records": 0}
                for day in days
            },
            related=[
                RelatedTable("quarantine.facts", changed=False, metadata={"dagster/row_count": 0}),
                RelatedTable(
                    "ops.data_quality",
                    changed=True,
                    metadata={"dagster/row_count": len(days)},
                    samples={"lakehouse/sample": [{"expectation": "positive", "failed": "0"}]},
                ),
            ],
        )


def facts_asset() -> dg.AssetsDefinition:
    return table_asset(Domain("d", "d", (FACTS_TABLE,)), FACTS_TABLE, partitions_definition(DAYS), None)


def run_range(
    instance: dg.DagsterInstance, first: date, last: date, runner: CannedRunner
) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("facts_job", selection=[dg.AssetKey(FACTS.key_path)])
    defs = dg.Definitions(
        assets=[facts_asset()],
        jobs=[job],
        resources={"runner": runner, "catalog": GlueCatalog(), "metrics": UnpublishedMetrics()},
    )
    return defs.resolve_job_def("facts_job").execute_in_process(
        instance=instance, tags=range_tags(first, last)
    )


def test_each_day_of_a_range_shows_its_own_figures_and_the_whole_write_is_reported_once() -> None:
    instance = dg.DagsterInstance.ephemeral()
    first, last = date(2026, 11, 3), date(2026, 11, 9)
    result = run_range(instance, first, last, CannedRunner())

    events = [
        m for m in result.asset_materializations_for_node(FACTS.op_name) if m.asset_key.path[0] == "silver"
    ]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert [m.partition for m in events] == [day.isoformat() for day in days]
    for day, event in zip(days, events, strict=True):
        assert event.metadata["dagster/row_count"].value == rows_of(day), day
    with_schema = [m for m in events if "dagster/column_schema" in m.metadata]
    assert [m.partition for m in with_schema] == [last.isoformat()], "the whole write once, on its last day"
    assert with_schema[0].metadata["lakehouse/table_rows"].value == 1000
    assert all(len(m.metadata) == 2 for m in events[:-1]), "a day carries its own figures only"

    related = {
        event.event_specific_data.materialization.asset_key.to_user_string(): event
        for event in result.all_events
        if event.is_step_materialization
    }
    quality = related["ops/ops.data_quality"].event_specific_data.materialization
    assert quality.partition is None and quality.metadata["dagster/row_count"].value == len(days)
    sample = quality.metadata["lakehouse/sample"].value
    assert [dict(record.data) for record in sample.records] == [{"expectation": "positive", "failed": "0"}]
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert [e.asset_key.to_user_string() for e in observed] == ["quarantine/quarantine.facts"]


def test_the_schema_change_check_compares_with_the_previous_write_not_the_day_before() -> None:
    instance = dg.DagsterInstance.ephemeral()
    first = run_range(instance, date(2026, 11, 1), date(2026, 11, 5), CannedRunner())
    again = run_range(instance, date(2026, 11, 6), date(2026, 11, 10), CannedRunner())
    changed = run_range(
        instance,
        date(2026, 11, 11),
        date(2026, 11, 12),
        CannedRunner(columns=["day:date", "amount:decimal(12,3)", "note:string"]),
    )

    def schema_check(result) -> dg.AssetCheckEvaluation:
        (evaluation,) = [
            e for e in result.get_asset_check_evaluations() if e.check_name == SCHEMA_CHANGE_CHECK
        ]
        return evaluation

    assert schema_check(first).passed and "nothing to compare" in schema_check(first).description
    assert schema_check(again).passed and first.run_id[:8] in schema_check(again).description
    evaluation = schema_check(changed)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["added_columns"].value == ["note"]
    assert evaluation.metadata["type_changes"].value == ["amount: decimal(12,2) -> decimal(12,3)"]
    assert evaluation.metadata["compared_with_run"].value == again.run_id


def test_a_schema_is_found_behind_a_page_of_days_without_one(monkeypatch) -> None:
    monkeypatch.setattr("lakehouse_dagster.defs.schema_change._PAGE", 3)
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(FACTS.key_path)
    schema = dg.TableSchema(columns=[dg.TableColumn("day", "date")])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(key, metadata={"dagster/column_schema": schema})
    )
    for _ in range(7):  # days of a later write, without the schema
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={"dagster/row_count": 1}))

    same = schema_change_result(instance, key, schema)
    other = schema_change_result(instance, key, dg.TableSchema(columns=[dg.TableColumn("day", "timestamp")]))

    assert same.passed
    assert not other.passed and other.metadata["type_changes"].value == ["day: date -> timestamp"]


@pytest.mark.parametrize("changed", [True, False])
def test_a_related_table_is_materialised_when_written_and_observed_otherwise(changed) -> None:
    from lakehouse_dagster.defs.report import related_event

    event = related_event(
        RelatedTable(
            "quarantine.facts",
            changed=changed,
            uri="/lake/quarantine/facts",
            metadata={"dagster/row_count": 3},
            columns=[
                ColumnInfo("day", "date", True),
                ColumnInfo("_failed_expectations", "array<string>", True),
            ],
        ),
        {"day": "The day."},
    )
    assert isinstance(event, dg.AssetMaterialization if changed else dg.AssetObservation)
    assert event.asset_key == dg.AssetKey(["quarantine", "quarantine.facts"])
    columns = {c.name: c.description for c in event.metadata["dagster/column_schema"].value.columns}
    assert columns == {"day": "The day.", "_failed_expectations": None}
