"""The code location: ``dagster dev`` and ``dagster definitions validate`` load ``defs``.

Everything is derived from the registry's declarations: an asset per table, its checks, a
serving asset per served table, the quarantines and the quality history (reported by the
tables' steps), a maintenance asset per table, the jobs and schedules, a sensor per
partitioning that late changes touch, the file sensors (folder listing, or S3 events through
SQS), a micro-batch sensor per stream table, and the automation condition sensor (running by
default) that keeps the real-time tables fresh; besides them, the alert sensors.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import dagster as dg

from lakehouse_dagster.declarations.table import DEFAULT_REGISTRY, Registry, Table, load_registry
from lakehouse_dagster.defs.alerts import check_failure_sensor, run_failure_alert_sensor
from lakehouse_dagster.defs.assets import table_asset
from lakehouse_dagster.defs.events_sensor import events_sensor
from lakehouse_dagster.defs.freshness_alerts import freshness_alert_sensor
from lakehouse_dagster.defs.jobs import build_jobs, build_schedules
from lakehouse_dagster.defs.landing import landing_files_job
from lakehouse_dagster.defs.landing_sensor import landing_sensor
from lakehouse_dagster.defs.maintenance import maintenance_asset, maintenance_job, maintenance_schedules
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
from lakehouse_dagster.defs.stream_sensor import automation_sensor, stream_jobs_and_sensors
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.checks import Severity
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
        stream_tables = frozenset(table.name for table in registry.tables if table.stream is not None)
        warehouse_kind = warehouse_resource(settings).kind
        assets = [
            table_asset(
                domain,
                table,
                partitions.get(table.partitions),
                settings.as_of_date,
                layout.catalog_name(table.name),
                stream_tables,
                pool=table_pool(settings, table),
                related_docs=related_docs(registry, table),
                partitioned_upstream=partitioned_upstream(registry, table),
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
        freshness_alert_sensor(Severity(monitoring.alert_severity.value.upper())),
    ]
    files_job = landing_files_job(registry)
    # With a queue of S3 events, the events sensor runs and the listing sensor waits stopped.
    by_events = settings.events_queue_url is not None
    running, stopped = dg.DefaultSensorStatus.RUNNING, dg.DefaultSensorStatus.STOPPED
    sensors += [
        landing_sensor(
            registry, settings.layout, files_job, default_status=stopped if by_events else running
        ),
        events_sensor(
            registry,
            settings.layout,
            settings.events_queue_url,
            files_job,
            default_status=running if by_events else stopped,
        ),
    ]
    stream_jobs, stream_sensors = stream_jobs_and_sensors(
        registry, settings.layout, settings.stream_interval_seconds
    )
    sensors += [*stream_sensors, automation_sensor(settings.stream_interval_seconds)]
    return dg.Definitions(
        assets=[
            *assets,
            *reported,
            *(maintenance_asset(table, settings.as_of_date, table_pool(settings, table)) for table in tables),
        ],
        asset_checks=[freshness_check(table) for _, table in resolved if table.serving is not None],
        jobs=[*jobs.values(), files_job, *stream_jobs, maintenance],
        schedules=[
            *build_schedules(registry, jobs),
            *maintenance_schedules(tables, maintenance, registry.default_maintenance.cron),
        ],
        sensors=sensors,
        resources=build_resources(settings, registry_path),
        executor=executor_for(settings),
    )


def check_thresholds(settings: LakehouseSettings, registry: Registry) -> None:
    """Refuse thresholds for checks a declared table does not have or that read no tolerance,
    and for a table that is not declared but spelled like one that is, or named in another layer
    (a typo would leave its checks at 0). Other tables may belong to other code locations
    sharing the file: they are only logged."""
    declared = {str(table.name): [spec.name for spec in table.check_specs()] for table in registry.tables}
    source = settings.thresholds_file or "lakehouse_dagster/quality/thresholds.yaml"
    unknown = settings.thresholds.unknown_checks(declared)
    if unknown:
        raise ThresholdsError(f"quality thresholds file {source}: no such check: {', '.join(unknown)}")
    ignored = settings.thresholds.entries(
        {str(table.name): tolerance_free_checks(table) for table in registry.tables}
    )
    if ignored:
        raise ThresholdsError(
            f"quality thresholds file {source}: {', '.join(ignored)}: the check takes no tolerance "
            "(any failing row fails it); remove the entry"
        )
    for table in settings.thresholds.unknown_tables(declared):
        meant = meant_table(table, declared, settings.thresholds.by_table[table])
        if meant:
            raise ThresholdsError(
                f"quality thresholds file {source}: no table {table} here; did you mean {meant}?"
            )
        dg.get_dagster_logger().info(
            f"quality thresholds file {source}: {table} is not a table of this code location"
        )


def partitioned_upstream(registry: Registry, table: Table) -> tuple[TableName, ...]:
    """The tables ``table`` reads that share its partitions (a day of it reads that day of them)."""
    if table.partitions is None:
        return ()
    return tuple(name for name in table.upstream if registry.table(name).partitions == table.partitions)


def tolerance_free_checks(table: Table) -> list[str]:
    """The table's checks that read no tolerance: all but its expectations (evaluated with one)
    and its table checks (``references`` and ``row_count_anomaly`` read one, and a domain's own
    check may). That leaves the framework's fixed checks: the primary key and rejected files."""
    tolerant = {expectation.name for expectation in table.expectations} | {
        check.spec.name for check in table.checks
    }
    return [spec.name for spec in table.check_specs() if spec.name not in tolerant]


def meant_table(written: str, declared: Mapping[str, Iterable[str]], checks: Iterable[str]) -> str | None:
    """The declared table ``written`` presumably means: one of that name in another layer that
    has every check of the entry (``silver.sales_order_facts`` for ``gold.sales_order_facts:
    row_count_anomaly``; another code location's ``gold.customers`` beside our
    ``bronze.customers`` has checks of its own), else one it is a typo of."""
    name, named = written.partition(".")[2], set(checks)
    same_name = [t for t, own in declared.items() if t.partition(".")[2] == name and named <= set(own)]
    typos = [table for table in declared if is_typo_of(written, table)]
    return next(iter(same_name + typos), None)


def is_typo_of(written: str, declared: str) -> bool:
    """Whether ``written`` looks like ``declared`` mistyped: at most two characters apart (a
    letter missing, extra, wrong or swapped), and not ``declared`` with a suffix, as another
    code location's tables may be (``silver.customers_eu``, ``gold.customer_segments2``)."""
    if written.startswith(declared):
        return False
    return _edit_distance(written, declared) <= 2


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


#: The last definitions built, and the settings they were built from.
_last_built: list[tuple[LakehouseSettings, dg.Definitions]] = []


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, from the environment as it is when Dagster loads it (not when this
    module was first imported: a process may load the code location again, as ``make run`` and
    the tests do).

    Dagster loads it several times in one process (seven times in one ``dagster asset
    materialize``): while the settings are the same, the definitions are built once."""
    settings = LakehouseSettings.from_env()
    if not _last_built or _last_built[0][0] != settings:
        _last_built[:] = [(settings, build_definitions(settings))]
    return _last_built[0][1]
