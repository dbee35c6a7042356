"""Assets from table units: each asset is a thin wrapper that runs its table's unit."""

# No ``from __future__ import annotations`` here: Dagster inspects the compute functions' annotations.

from datetime import date
from typing import Any

import dagster as dg

from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.lake.layout import is_remote
from lakehouse_dagster.lake.resource import LakeResource
from lakehouse_dagster.units.base import Severity, TableUnit, UnitRequest, UnitResult
from lakehouse_dagster.units.runner import execute


class AsOfDateConfig(dg.Config):
    """The run's logical date for tables that depend on "today"."""

    as_of_date: str | None = None


def table_asset(unit: TableUnit, default_as_of_date: date | None = None) -> dg.AssetsDefinition:
    key = dg.AssetKey(unit.name.key_path)
    check_specs = [
        dg.AssetCheckSpec(
            name=check.name,
            asset=key,
            description=check.description,
            blocking=check.severity is Severity.ERROR,
        )
        for check in unit.checks
    ]

    def run(
        context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource, as_of_date: date | None
    ) -> dg.MaterializeResult:
        request = UnitRequest(table=str(unit.name), run_id=context.run.run_id, as_of_date=as_of_date)
        result = execute(request, spark.get_session(), lake.layout(), context.log)
        return materialize_result(result)

    decorate = dg.asset(
        key=key,
        deps=[dg.AssetKey(upstream.key_path) for upstream in unit.inputs],
        description=unit.description,
        group_name=unit.group,
        kinds={"spark", "delta"},
        check_specs=check_specs,
        metadata={"dagster/table_name": str(unit.name)},
        tags={"lakehouse/layer": unit.name.layer},
        # One writer per table across runs (the instance gives each pool one slot by default).
        pool=str(unit.name),
    )
    if unit.uses_as_of_date:

        def materialize_as_of(
            context: dg.AssetExecutionContext,
            spark: SparkResource,
            lake: LakeResource,
            config: AsOfDateConfig,
        ) -> dg.MaterializeResult:
            as_of_date = date.fromisoformat(config.as_of_date) if config.as_of_date else default_as_of_date
            return run(context, spark, lake, as_of_date)

        return decorate(materialize_as_of)

    def materialize(
        context: dg.AssetExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> dg.MaterializeResult:
        return run(context, spark, lake, None)

    return decorate(materialize)


def materialize_result(result: UnitResult) -> dg.MaterializeResult:
    metadata: dict[str, Any] = dict(result.metadata)
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
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=check.name,
                passed=check.passed,
                severity=dg.AssetCheckSeverity(check.severity.value),
                description=check.description or None,
                metadata=check.metadata,
            )
            for check in result.checks
        ],
    )
