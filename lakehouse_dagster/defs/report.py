"""Unit reports to Dagster events: the one place where a report becomes what the UI shows.

- the table's materialisation with its checks (the schema-change check included);
- a partitioned write: one materialisation per day, each with that day's own figures (its
  rows, its quality counts); the figures of the whole write (the range, the table's rows, the
  schema, the lineage, the location) once, on the range's last day, which is then the asset's
  latest materialisation;
- the tables written besides (its quarantine, the quality history): materialisations of their
  assets, or observations when the unit only looked at them.
"""

# No ``from __future__ import annotations``: Dagster inspects the compute functions' annotations.

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.defs.schema_change import COLUMN_SCHEMA, schema_change_result
from lakehouse_dagster.lake.delta import ColumnInfo
from lakehouse_dagster.lake.layout import TableName, is_remote
from lakehouse_dagster.quality.checks import CheckOutcome, Severity
from lakehouse_dagster.units.report import RelatedTable, Sample, UnitResult

Events = Iterator[dg.MaterializeResult | dg.AssetCheckResult | dg.AssetMaterialization | dg.AssetObservation]


def dagster_events(
    context: dg.AssetExecutionContext,
    table: Table,
    result: UnitResult,
    related_docs: Mapping[str, Mapping[str, str]] | None = None,
) -> Events:
    """The related tables' events, then the materialisation with its checks; or, for a failed
    unit, the checks it got to and a failure that names the error. ``related_docs``: the column
    docs of each related table, by name."""
    key = dg.AssetKey(table.name.key_path)
    docs = related_docs or {}
    yield from (related_event(related, docs.get(related.table, {})) for related in result.related)
    if result.error is not None:
        yield from (check_result(key, outcome) for outcome in result.checks)
        raise unit_failure(table, result)
    metadata = materialization_metadata(table, result)
    checks = [check_result(key, outcome) for outcome in result.checks]
    checks.append(schema_change_result(context.instance, key, metadata[COLUMN_SCHEMA]))
    version = result.metadata.get("lakehouse/delta_version")
    # The table's Delta version: unchanged when a run wrote nothing (eager tables downstream wait).
    data_version = dg.DataVersion(str(version)) if version is not None else None
    if context.has_partition_key_range:
        keys = context.partition_keys
        for partition in keys:
            context.add_asset_metadata(result.partitions.get(partition, {}), partition_key=partition)
        # Once: the figures of the whole write, with the last day's own figures.
        context.add_asset_metadata(
            {**metadata, **result.partitions.get(keys[-1], {})}, partition_key=keys[-1]
        )
        yield dg.MaterializeResult(asset_key=key, check_results=checks, data_version=data_version)
    else:
        yield dg.MaterializeResult(
            asset_key=key, metadata=metadata, check_results=checks, data_version=data_version
        )


def maintenance_events(table: Table, result: UnitResult) -> Events:
    """A maintenance asset's materialisation (files and bytes before and after, files vacuumed,
    rows expired), or a failure that names the error."""
    if result.error is not None:
        raise unit_failure(table, result)
    metadata = plain_metadata(result.metadata)
    if result.uri:
        metadata["dagster/uri"] = location(result.uri)
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


def column_schema(columns: list[ColumnInfo], docs: Mapping[str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                column.name,
                column.type,
                description=docs.get(column.name),
                constraints=dg.TableColumnConstraints(nullable=column.nullable),
            )
            for column in columns
        ]
    )


def location(uri: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(uri) if is_remote(uri) else dg.MetadataValue.path(uri)


def sample_table(rows: Sample) -> dg.MetadataValue:
    """Rows of text as a table in the UI."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    return dg.MetadataValue.table(
        records=[dg.TableRecord({column: row.get(column) for column in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(column, "string") for column in columns]),
    )


def materialization_metadata(table: Table, result: UnitResult) -> dict[str, Any]:
    metadata: dict[str, Any] = plain_metadata(result.metadata)
    metadata.update({key: sample_table(rows) for key, rows in result.samples.items()})
    metadata[COLUMN_SCHEMA] = column_schema(result.columns, table.documented_columns())
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
        metadata["dagster/uri"] = location(result.uri)
    return metadata


def related_event(
    related: RelatedTable, docs: Mapping[str, str]
) -> dg.AssetMaterialization | dg.AssetObservation:
    """A materialisation of the related table's asset when the unit wrote it, else an observation."""
    metadata: dict[str, Any] = plain_metadata(related.metadata)
    metadata.update({key: sample_table(rows) for key, rows in related.samples.items()})
    if related.columns:
        metadata[COLUMN_SCHEMA] = column_schema(related.columns, docs)
    if related.uri:
        metadata["dagster/uri"] = location(related.uri)
    key = dg.AssetKey(TableName.parse(related.table).key_path)
    if related.changed:
        return dg.AssetMaterialization(asset_key=key, metadata=metadata)
    return dg.AssetObservation(asset_key=key, metadata=metadata)


def check_result(key: dg.AssetKey, outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=outcome.name,
        asset_key=key,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR
        if outcome.severity is Severity.ERROR
        else dg.AssetCheckSeverity.WARN,
        description=outcome.description or None,
        metadata=outcome.metadata,
    )
