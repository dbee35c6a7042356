"""The code location: ``dagster dev`` and ``dagster definitions validate`` load ``defs``.

Everything is derived from the registry's declarations: an asset per table, its checks,
a serving asset per served table, a maintenance asset per table, the jobs and schedules, and a
sensor per partitioning that late changes touch; besides them, the alert sensors.
"""

from __future__ import annotations

import warnings

import dagster as dg

from lakehouse_dagster.declarations.table import DEFAULT_REGISTRY, load_registry
from lakehouse_dagster.defs.alerts import check_failure_sensor, run_failure_alert_sensor
from lakehouse_dagster.defs.assets import table_asset
from lakehouse_dagster.defs.jobs import build_jobs, build_schedules
from lakehouse_dagster.defs.maintenance import maintenance_asset, maintenance_job, maintenance_schedules
from lakehouse_dagster.defs.partitions import partitions_definition
from lakehouse_dagster.defs.resources import build_resources, executor_for, warehouse_resource
from lakehouse_dagster.defs.sensors import touched_partitions_sensor
from lakehouse_dagster.defs.serving import freshness_check, serving_asset
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.quality.checks import Severity


def build_definitions(settings: LakehouseSettings, registry_path: str = DEFAULT_REGISTRY) -> dg.Definitions:
    """The definitions of the registry at ``registry_path`` (``module:attribute``)."""
    registry = load_registry(registry_path)
    partitions = {p: partitions_definition(p, settings.partitions_start) for p in registry.partitionings()}
    jobs = build_jobs(registry)
    with warnings.catch_warnings():
        # Single-run backfill policies and schema-change checks are beta in Dagster 1.13; chosen on purpose.
        warnings.simplefilter("ignore", dg.BetaWarning)
        resolved = list(registry.resolved())
        warehouse_kind = warehouse_resource(settings).kind
        assets = [
            table_asset(
                domain,
                table,
                partitions.get(table.partitions),
                settings.as_of_date,
                settings.layout.catalog_name(table.name),
            )
            for domain, table in resolved
        ] + [
            serving_asset(domain, table, partitions.get(table.partitions), warehouse_kind)
            for domain, table in resolved
            if table.serving is not None
        ]
        schema_change_checks = dg.build_column_schema_change_checks(assets=assets)
    tables = [table for _, table in resolved]
    maintenance = maintenance_job(tables)
    monitoring = settings.monitoring
    sensors = [
        *(
            touched_partitions_sensor(registry, p, jobs[p.job], partitions[p])
            for p in registry.partitionings()
            if registry.touching(p)
        ),
        check_failure_sensor(Severity(monitoring.alert_severity.value.upper()), monitoring.dagster_url),
        run_failure_alert_sensor(monitoring.dagster_url),
    ]
    return dg.Definitions(
        assets=[*assets, *(maintenance_asset(table, settings.as_of_date) for table in tables)],
        # Compare each materialisation's dagster/column_schema with the one before.
        asset_checks=[
            *schema_change_checks,
            *(freshness_check(table) for _, table in resolved if table.serving is not None),
        ],
        jobs=[*jobs.values(), maintenance],
        schedules=[
            *build_schedules(registry, jobs),
            *maintenance_schedules(tables, maintenance, registry.default_maintenance.cron),
        ],
        sensors=sensors,
        resources=build_resources(settings, registry_path),
        executor=executor_for(settings),
    )


defs = build_definitions(LakehouseSettings.from_env())
