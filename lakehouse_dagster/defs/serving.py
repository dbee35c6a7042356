"""A serving asset per served table: ``serving.<name>``, downstream of its lake table.

The asset loads the lake table (at one Delta version) into the warehouse: a daily-partitioned
table a range of days at a time (a backfill of any range is one load), any other table
whole; each load is one transaction. Its checks: the warehouse rows reconcile with the lake
(per day where partitioned), and the warehouse is loaded no earlier than the lake table's last
materialisation.
"""

# No ``from __future__ import annotations``: Dagster inspects the compute functions' annotations.

from datetime import UTC, date, datetime

import dagster as dg

from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.declarations.timing import Automation
from lakehouse_dagster.defs.assets import code_references
from lakehouse_dagster.defs.automation import eager_on_new_data
from lakehouse_dagster.defs.schema_change import schema_change_result, schema_change_spec
from lakehouse_dagster.lake.resource import LakeResource
from lakehouse_dagster.lake.snapshots import LakeSnapshot
from lakehouse_dagster.serving.schema import warehouse_columns
from lakehouse_dagster.serving.spec import LOADED_AT, DateRange, ServedTable
from lakehouse_dagster.serving.warehouse import Warehouse, latest_load

RECONCILE_CHECK = "row_counts_match_lake"
FRESHNESS_CHECK = "loaded_after_lake"
#: Days named in a check's description, at most.
_SHOWN = 10


def _window(context: dg.AssetExecutionContext) -> DateRange:
    window = context.partition_time_window
    return DateRange(window.start.date(), window.end.date())


def _reconcile(
    served: ServedTable,
    snapshot: LakeSnapshot,
    warehouse: Warehouse,
    window: DateRange | None,
    loaded: dict[date, int] | None = None,
) -> dg.AssetCheckResult:
    """Rows in the warehouse against the lake version just loaded: per day (``loaded``: the
    warehouse's rows per day of the window), or in total."""
    if window is not None:
        assert served.partition_column is not None and loaded is not None
        lake = snapshot.counts_by_day(served.partition_column, window)
        days = sorted(set(lake) | set(loaded), key=lambda d: (d is None, d))
        differ = [day for day in days if lake.get(day, 0) != loaded.get(day, 0)]
        shown = ", ".join(
            f"{d}: {lake.get(d, 0)} in the lake, {loaded.get(d, 0)} loaded" for d in differ[:_SHOWN]
        )
        return dg.AssetCheckResult(
            check_name=RECONCILE_CHECK,
            asset_key=dg.AssetKey(served.key_path),
            passed=not differ,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{len(differ)} of {len(days)} days differ: {shown}"
            if differ
            else f"{len(days)} day(s), {sum(lake.values())} rows, as in {served.source} version "
            f"{snapshot.version}",
            metadata={
                "days_compared": len(days),
                "days_differing": len(differ),
                "lake_rows": sum(lake.values()),
                "warehouse_rows": sum(loaded.values()),
                "lake_version": snapshot.version,
            },
        )
    lake_rows, warehouse_rows = snapshot.count(), warehouse.row_count(served) or 0
    return dg.AssetCheckResult(
        check_name=RECONCILE_CHECK,
        asset_key=dg.AssetKey(served.key_path),
        passed=lake_rows == warehouse_rows,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{warehouse_rows} rows, as in {served.source} version {snapshot.version}"
        if lake_rows == warehouse_rows
        else f"{lake_rows} rows in {served.source} (version {snapshot.version}), "
        f"{warehouse_rows} in {served.qualified}",
        metadata={"lake_rows": lake_rows, "warehouse_rows": warehouse_rows, "lake_version": snapshot.version},
    )


def serving_asset(
    domain: Domain, table: Table, partitions_def: dg.DailyPartitionsDefinition | None, warehouse_kind: str
) -> dg.AssetsDefinition:
    served = table.served
    assert served is not None
    key = dg.AssetKey(served.key_path)
    freshness = table.freshness
    what = "per day of the range loaded" if partitions_def is not None else "in total"

    spec = dg.AssetSpec(
        key=key,
        deps=[dg.AssetKey(table.name.key_path)],
        description=f"{table.description} Served in the warehouse as {served.qualified}, loaded from "
        f"{table.name} in one transaction per load.",
        group_name=domain.name,
        owners=list(table.owners),
        kinds={warehouse_kind},
        metadata={
            "dagster/table_name": served.qualified,
            "dagster/code_references": code_references(table, first_only=True),
        },
        tags={"lakehouse/layer": "serving"},
        partitions_def=partitions_def,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=freshness.fail_after, warn_window=freshness.warn_after
        )
        if freshness
        else None,
        # A real-time table is served as soon as it changes, as it is rebuilt.
        automation_condition=eager_on_new_data() if table.automation is Automation.EAGER else None,
    )

    @dg.multi_asset(
        name=served.op_name,
        specs=[spec],
        check_specs=[
            dg.AssetCheckSpec(
                RECONCILE_CHECK,
                asset=key,
                description=f"The warehouse rows match {table.name} at the version loaded, {what}.",
            ),
            schema_change_spec(key),
        ],
        pool=served.qualified,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def is not None else None,
    )
    def load(
        context: dg.AssetExecutionContext, warehouse: Warehouse, lake: LakeResource
    ) -> dg.MaterializeResult:
        snapshot = LakeSnapshot(str(table.name), lake.layout().table_uri(table.name))
        window = _window(context) if partitions_def is not None else None
        rows = snapshot.rows(served.partition_column, window)
        result = warehouse.load(
            served, rows, window=window, source_version=snapshot.version, run_id=context.run.run_id
        )
        if result.columns_added:
            context.log.info(f"{served.qualified}: added column(s) {', '.join(result.columns_added)}")
        docs = dict(table.column_docs)
        schema = dg.TableSchema(
            columns=[
                dg.TableColumn(column.name, column.type, description=docs.get(column.name))
                for column in warehouse_columns(rows.schema)
            ]
            + [dg.TableColumn(LOADED_AT, "timestamp with time zone", description="The load's time.")]
        )
        metadata = {
            "dagster/column_schema": schema,
            "lakehouse/loaded_at": dg.MetadataValue.timestamp(result.loaded_at),
            "lakehouse/lake_version": snapshot.version,
            "lakehouse/range": window.label() if window else "whole table",
            "lakehouse/columns_added": list(result.columns_added),
        }
        loaded = warehouse.counts_by_day(served, window) if window is not None else None
        checks = [
            _reconcile(served, snapshot, warehouse, window, loaded),
            schema_change_result(context.instance, key, schema),
        ]
        if loaded is None:
            return dg.MaterializeResult(
                asset_key=key, metadata={"dagster/row_count": result.rows, **metadata}, check_results=checks
            )
        # Each day its own rows; the figures of the whole load once, with the last day.
        keys = context.partition_keys
        for partition in keys:
            context.add_asset_metadata(
                {"dagster/row_count": loaded.get(date.fromisoformat(partition), 0)}, partition_key=partition
            )
        context.add_asset_metadata(
            {
                **metadata,
                "lakehouse/range_rows": result.rows,
                "dagster/row_count": loaded.get(date.fromisoformat(keys[-1]), 0),
            },
            partition_key=keys[-1],
        )
        return dg.MaterializeResult(asset_key=key, check_results=checks)

    return load


def freshness_check(table: Table) -> dg.AssetChecksDefinition:
    """The warehouse is loaded no earlier than the lake table's last materialisation (of each day,
    where partitioned). Runs after each load, and on its own from the UI."""
    served = table.served
    assert served is not None
    source = dg.AssetKey(table.name.key_path)

    @dg.asset_check(
        asset=dg.AssetKey(served.key_path),
        name=FRESHNESS_CHECK,
        description=f"{served.qualified} was loaded after the last materialisation of {table.name}"
        + (" (each day)" if served.partition_column else "")
        + ".",
    )
    def loaded_after_lake(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        if served.partition_column is None:
            stale = _stale_table(context.instance, source, served, warehouse)
        else:
            stale = _stale_days(context.instance, source, served, warehouse)
        shown = ", ".join(stale[:_SHOWN]) + (" ..." if len(stale) > _SHOWN else "")
        return dg.AssetCheckResult(
            passed=not stale,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"not reloaded since {table.name} was materialised: {shown}" if stale else None,
            metadata={"stale": len(stale)},
        )

    return loaded_after_lake


def _seconds(moment: datetime | None) -> float | None:
    return moment.astimezone(UTC).timestamp() if moment is not None else None


def _stale_table(
    instance: dg.DagsterInstance, source: dg.AssetKey, served: ServedTable, warehouse: Warehouse
) -> list[str]:
    event = instance.get_latest_materialization_event(source)
    if event is None:
        return []
    loaded = _seconds(warehouse.loaded_at(served))
    if loaded is None:
        return ["never loaded"]
    return (
        []
        if loaded >= event.timestamp
        else [f"loaded {datetime.fromtimestamp(loaded, UTC):%Y-%m-%d %H:%M:%S} UTC"]
    )


def _stale_days(
    instance: dg.DagsterInstance, source: dg.AssetKey, served: ServedTable, warehouse: Warehouse
) -> list[str]:
    """Days materialised in the lake after their last load (or never loaded)."""
    loads = warehouse.loads(served)
    materialized = {date.fromisoformat(key) for key in instance.get_materialized_partitions(source)}
    stale = {day for day in materialized if not any(load.covers(day) for load in loads)}
    oldest = min((_seconds(load.loaded_at) or 0.0 for load in loads), default=None)
    if oldest is not None:
        cursor = None
        while True:
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=source, after_timestamp=oldest), limit=1000, cursor=cursor
            )
            for record in page.records:
                if record.partition_key is None:
                    continue
                day = date.fromisoformat(record.partition_key)
                loaded = _seconds(latest_load(loads, day))
                if loaded is None or loaded < record.timestamp:
                    stale.add(day)
            if not page.has_more:
                break
            cursor = page.cursor
    return [day.isoformat() for day in sorted(stale)]
