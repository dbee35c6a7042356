"""Assets from table units: each asset is a thin wrapper that runs its table's unit."""

# No ``from __future__ import annotations`` here: Dagster inspects the compute functions' annotations.

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg

from lakehouse_dagster.defs.partitions import ORDER_DATE_PARTITIONS
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.lake.layout import is_remote
from lakehouse_dagster.lake.resource import LakeResource
from lakehouse_dagster.quality.checks import CheckOutcome, expectation_outcomes
from lakehouse_dagster.quality.expectations import ExpectationFailedError
from lakehouse_dagster.units.base import PartitionWindow, Severity, TableUnit, UnitRequest, UnitResult
from lakehouse_dagster.units.runner import execute

#: Every table is rebuilt daily: warn after 26 hours without a materialisation, fail after 50
#: (two missed days).
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=50), warn_window=timedelta(hours=26)
)


class AsOfDateConfig(dg.Config):
    """The run's logical date for tables that depend on "today"."""

    as_of_date: str | None = None


Materialization = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


def table_asset(unit: TableUnit, settings: LakehouseSettings) -> dg.AssetsDefinition:
    key = dg.AssetKey(unit.name.key_path)
    check_specs = [
        dg.AssetCheckSpec(
            name=check.name,
            asset=key,
            description=check.description,
            # A failed ERROR check keeps downstream assets of the run from running.
            blocking=check.severity is Severity.ERROR,
        )
        for check in unit.check_specs()
    ]

    def run(
        context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource, as_of_date: date | None
    ) -> Materialization:
        partition = None
        if unit.partitioned:
            window = context.partition_time_window
            partition = PartitionWindow(window.start.date(), window.end.date())
        request = UnitRequest(
            table=str(unit.name), run_id=context.run.run_id, as_of_date=as_of_date, partition=partition
        )
        try:
            result = execute(
                request, spark.get_session(), lake.layout(), context.log, settings.thresholds, unit
            )
        except ExpectationFailedError as error:
            # Nothing was written; the failed expectations still show in the UI as failed checks.
            yield from (check_result(outcome) for outcome in expectation_outcomes(error.results))
            raise dg.Failure(description=str(error)) from error
        yield materialize_result(unit, result)

    decorate = dg.asset(
        key=key,
        deps=[dg.AssetKey(upstream.key_path) for upstream in unit.upstream],
        description=unit.description,
        group_name=unit.group,
        kinds={"spark", "delta"},
        check_specs=check_specs,
        metadata={"dagster/table_name": str(unit.name)},
        tags={"lakehouse/layer": unit.name.layer},
        # One writer per table across runs (the instance gives each pool one slot by default).
        pool=str(unit.name),
        partitions_def=ORDER_DATE_PARTITIONS if unit.partitioned else None,
        freshness_policy=DAILY_FRESHNESS,
        # A backfill of any range is one run, and each asset writes the range at once.
        backfill_policy=dg.BackfillPolicy.single_run() if unit.partitioned else None,
    )
    if unit.uses_as_of_date:

        def materialize_as_of(
            context: dg.AssetExecutionContext,
            spark: SparkResource,
            lake: LakeResource,
            config: AsOfDateConfig,
        ) -> Materialization:
            as_of_date = date.fromisoformat(config.as_of_date) if config.as_of_date else settings.as_of_date
            yield from run(context, spark, lake, as_of_date)

        return decorate(materialize_as_of)

    def materialize(
        context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> Materialization:
        yield from run(context, spark, lake, None)

    return decorate(materialize)


def materialize_result(unit: TableUnit, result: UnitResult) -> dg.MaterializeResult:
    metadata: dict[str, Any] = dict(result.metadata)
    if unit.column_lineage:
        metadata["dagster/column_lineage"] = dg.TableColumnLineage(
            deps_by_column={
                column: [
                    dg.TableColumnDep(asset_key=dg.AssetKey(table.key_path), column_name=name)
                    for table, name in deps
                ]
                for column, deps in unit.column_lineage.items()
            }
        )
    metadata["dagster/column_schema"] = dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name, column.type, constraints=dg.TableColumnConstraints(nullable=column.nullable)
            )
            for column in result.columns
        ]
    )
    metadata["dagster/uri"] = (
        dg.MetadataValue.url(result.uri) if is_remote(result.uri) else dg.MetadataValue.path(result.uri)
    )
    return dg.MaterializeResult(
        metadata=metadata, check_results=[check_result(check) for check in result.checks]
    )


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity(outcome.severity.value),
        description=outcome.description or None,
        metadata=outcome.metadata,
    )
