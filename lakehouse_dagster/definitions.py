"""The code location: ``dagster dev`` and ``dagster definitions validate`` load ``defs``.

Everything is derived from the registry's declarations: an asset per table, its checks,
a serving asset per served table, the quarantines and the quality history (reported by the
tables' steps), the jobs and schedules, and a sensor per partitioning that late changes touch.
"""

from __future__ import annotations

import warnings

import dagster as dg

from lakehouse_dagster.declarations.table import DEFAULT_REGISTRY, Registry, load_registry
from lakehouse_dagster.defs.assets import table_asset
from lakehouse_dagster.defs.jobs import build_jobs, build_schedules
from lakehouse_dagster.defs.partitions import partitions_definition
from lakehouse_dagster.defs.pools import table_pool
from lakehouse_dagster.defs.quality_assets import (
    data_quality_spec,
    has_quarantine,
    quarantine_spec,
    related_docs,
)
from lakehouse_dagster.defs.resources import build_resources, executor_for, warehouse_resource
from lakehouse_dagster.defs.sensors import touched_partitions_sensor
from lakehouse_dagster.defs.serving import freshness_check, serving_asset
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.quality.thresholds import ThresholdsError


def build_definitions(settings: LakehouseSettings, registry_path: str = DEFAULT_REGISTRY) -> dg.Definitions:
    """The definitions of the registry at ``registry_path`` (``module:attribute``)."""
    registry = load_registry(registry_path)
    check_thresholds(settings, registry)
    partitions = {p: partitions_definition(p, settings.partitions_start) for p in registry.partitionings()}
    jobs = build_jobs(registry)
    layout = settings.layout
    with warnings.catch_warnings():
        # Single-run backfill policies and code references are beta in Dagster 1.13; chosen on purpose.
        warnings.simplefilter("ignore", dg.BetaWarning)
        resolved = list(registry.resolved())
        warehouse_kind = warehouse_resource(settings).kind
        assets = [
            table_asset(
                domain,
                table,
                partitions.get(table.partitions),
                settings.as_of_date,
                layout.catalog_name(table.name),
                pool=table_pool(settings, table),
                related_docs=related_docs(registry, table),
            )
            for domain, table in resolved
        ] + [
            serving_asset(domain, table, partitions.get(table.partitions), warehouse_kind)
            for domain, table in resolved
            if table.serving is not None
        ]
        # Written by the tables' steps, which report them: assets with no step of their own.
        reported = [
            quarantine_spec(domain, table, layout) for domain, table in resolved if has_quarantine(table)
        ] + [data_quality_spec(resolved, layout)]
    sensors = [
        touched_partitions_sensor(registry, p, jobs[p.job], partitions[p])
        for p in registry.partitionings()
        if registry.touching(p)
    ]
    return dg.Definitions(
        assets=[*assets, *reported],
        asset_checks=[freshness_check(table) for _, table in resolved if table.serving is not None],
        jobs=list(jobs.values()),
        schedules=build_schedules(registry, jobs),
        sensors=sensors,
        resources=build_resources(settings, registry_path),
        executor=executor_for(settings),
    )


def check_thresholds(settings: LakehouseSettings, registry: Registry) -> None:
    """Refuse thresholds for checks a declared table does not have (a file may also name tables
    of other code locations)."""
    unknown = settings.thresholds.unknown_checks(
        {str(table.name): [spec.name for spec in table.check_specs()] for table in registry.tables}
    )
    if unknown:
        source = settings.thresholds_file or "lakehouse_dagster/quality/thresholds.yaml"
        raise ThresholdsError(f"quality thresholds file {source}: no such check: {', '.join(unknown)}")


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, from the environment as it is when Dagster loads it (not when this
    module was first imported: a process may load the code location again, as ``make run`` and
    the tests do)."""
    return build_definitions(LakehouseSettings.from_env())
