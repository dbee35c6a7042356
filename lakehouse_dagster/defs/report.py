"""Unit reports to Dagster events: the one place where a report becomes what the UI shows."""

# No ``from __future__ import annotations``: Dagster inspects the compute functions' annotations.

from collections.abc import Iterator
from typing import Any

import dagster as dg

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.lake.layout import TableName, is_remote
from lakehouse_dagster.quality.checks import CheckOutcome, Severity
from lakehouse_dagster.units.report import UnitResult

Events = Iterator[dg.MaterializeResult | dg.AssetCheckResult]


def dagster_events(table: Table, result: UnitResult) -> Events:
    """A materialisation with its checks; or, for a failed unit, the checks it got to and a
    failure that names the error."""
    if result.error is not None:
        yield from (check_result(outcome) for outcome in result.checks)
        raise unit_failure(table, result)
    version = result.metadata.get("lakehouse/delta_version")
    yield dg.MaterializeResult(
        metadata=materialization_metadata(table, result),
        check_results=[check_result(outcome) for outcome in result.checks],
        # The table's Delta version: unchanged when a run wrote nothing (eager tables downstream wait).
        data_version=dg.DataVersion(str(version)) if version is not None else None,
    )


def maintenance_events(table: Table, result: UnitResult) -> Events:
    """A maintenance asset's materialisation (files and bytes before and after, files vacuumed,
    rows expired), or a failure that names the error."""
    if result.error is not None:
        raise unit_failure(table, result)
    metadata = plain_metadata(result.metadata)
    if result.uri:
        metadata["dagster/uri"] = _uri(result.uri)
    yield dg.MaterializeResult(metadata=metadata)


def unit_failure(table: Table, result: UnitResult) -> dg.Failure:
    assert result.error is not None
    return dg.Failure(
        description=f"{table.name}: {result.error.kind}: {result.error.message}",
        metadata={
            **plain_metadata(result.metadata),  # where it ran, e.g. the Databricks run's URL
            "error": dg.MetadataValue.text(result.error.traceback or result.error.message),
        },
    )


def plain_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """A report's metadata; the values of ``*_url`` keys are links."""
    return {
        key: dg.MetadataValue.url(value) if key.endswith("_url") and isinstance(value, str) else value
        for key, value in metadata.items()
    }


def materialization_metadata(table: Table, result: UnitResult) -> dict[str, Any]:
    metadata: dict[str, Any] = plain_metadata(result.metadata)
    metadata["dagster/column_schema"] = dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.type,
                description=table.column_docs.get(column.name),
                constraints=dg.TableColumnConstraints(nullable=column.nullable),
            )
            for column in result.columns
        ]
    )
    if result.lineage:
        metadata["dagster/column_lineage"] = dg.TableColumnLineage(
            deps_by_column={
                column: [
                    dg.TableColumnDep(
                        asset_key=dg.AssetKey(TableName.parse(source).key_path), column_name=name
                    )
                    for source, name in deps
                ]
                for column, deps in result.lineage.items()
            }
        )
    if result.uri:
        metadata["dagster/uri"] = _uri(result.uri)
    return metadata


def _uri(uri: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(uri) if is_remote(uri) else dg.MetadataValue.path(uri)


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR
        if outcome.severity is Severity.ERROR
        else dg.AssetCheckSeverity.WARN,
        description=outcome.description or None,
        metadata=outcome.metadata,
    )
