"""Table maintenance in Dagster: an asset per table (``maintenance/<layer>/maintenance.<layer>.<table>``),
the job that runs them, and their schedules (weekly by default; a table may declare its own cron).

A maintenance asset asks the runner to run the table's maintenance unit (``maintenance/unit.py``),
so on Databricks it runs on a cluster, like the table's builds. It runs in the table's pool:
the instance gives each pool one slot, so a table's maintenance and its writes never run at
the same moment, across runs. Each materialisation reports the table's files and bytes before
and after, the files vacuumed and the rows expired; the UI plots them.
"""

# No ``from __future__ import annotations``: Dagster inspects the compute functions' annotations.

from collections.abc import Sequence
from datetime import date

import dagster as dg

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.defs.report import Events, maintenance_events
from lakehouse_dagster.runners.base import UnitRunner
from lakehouse_dagster.units.request import UnitRequest, today_utc

GROUP = "maintenance"
JOB = "lakehouse_maintenance_job"
#: The schedule of every table that keeps the registry's default cron.
DEFAULT_SCHEDULE = f"{JOB}_schedule"


def maintenance_key(table: Table) -> dg.AssetKey:
    """``["maintenance", "silver", "maintenance.silver.customers"]``: labelled, like the tables,
    by its last part, which no table's label repeats."""
    return dg.AssetKey([GROUP, table.name.layer, f"{GROUP}.{table.name}"])


def maintenance_asset(
    table: Table, default_as_of: date | None, pool: str | None = None
) -> dg.AssetsDefinition:
    """The maintenance of a table whose declaration is resolved (``Registry.resolved()``), in
    ``pool``: the pool of the table's own step (the table's name by default). Its step is named
    ``maintenance__layer__table``."""
    maintenance = table.maintenance
    assert maintenance is not None, f"{table.name}: resolve the registry first"
    settings = [f"Z-order by {', '.join(maintenance.zorder_by)}" if maintenance.zorder_by else "compaction"]
    settings.append(f"VACUUM keeping {maintenance.vacuum_retention_hours} hours of versions")
    retention = maintenance.retention
    if retention.keeps_everything:
        settings.append("every row kept")
    else:
        kept = {
            "raw rows": retention.raw_rows_days,
            "quarantine rows": retention.quarantine_days,
            "quality history": retention.quality_history_days,
        }
        settings.append("; ".join(f"{what} kept {days} days" for what, days in kept.items() if days))

    spec = dg.AssetSpec(
        key=maintenance_key(table),
        deps=[dg.AssetKey(table.name.key_path)],
        description=f"Maintenance of {table.name}: {', '.join(settings)}.",
        group_name=GROUP,
        owners=list(table.owners),
        kinds={"delta"},
        tags={"lakehouse/layer": table.name.layer},
        metadata={"lakehouse/cron": maintenance.cron or "not scheduled"},
    )

    @dg.multi_asset(
        name=f"{GROUP}__{table.name.op_name}",
        specs=[spec],
        # The pool of the table's writes: never at the same moment as a write of the table.
        pool=pool or str(table.name),
    )
    def maintain(context: dg.AssetExecutionContext, runner: UnitRunner) -> Events:
        request = UnitRequest(
            table=str(table.name),
            as_of_date=default_as_of or today_utc(),
            run_id=context.run.run_id,
            maintenance=maintenance,
        )
        yield from maintenance_events(table, runner.run(context, table, request))

    return maintain


def maintenance_job(tables: Sequence[Table]) -> "dg.UnresolvedAssetJobDefinition":
    return dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.assets(*(maintenance_key(table) for table in tables)),
        description="Compact, Z-order and VACUUM the tables and expire their rows as declared.",
    )


def maintenance_schedules(
    tables: Sequence[Table], job: "dg.UnresolvedAssetJobDefinition", default_cron: str | None
) -> list[dg.ScheduleDefinition]:
    """One schedule for the tables on the registry's default cron; one per table with its own."""
    by_schedule: dict[tuple[str, str], list[Table]] = {}
    for table in tables:
        cron = table.maintenance.cron if table.maintenance else None
        if not cron:
            continue
        own = f"maintain_{table.name.layer}__{table.name.table}"
        name = DEFAULT_SCHEDULE if cron == default_cron else own
        by_schedule.setdefault((name, cron), []).append(table)
    return [_schedule(name, cron, members, job) for (name, cron), members in sorted(by_schedule.items())]


def _schedule(
    name: str, cron: str, tables: list[Table], job: "dg.UnresolvedAssetJobDefinition"
) -> dg.ScheduleDefinition:
    keys = [maintenance_key(table) for table in tables]
    names = ", ".join(str(table.name) for table in tables)

    def maintenance_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(asset_selection=keys)

    try:
        return dg.schedule(
            name=name,
            job=job,
            cron_schedule=cron,
            execution_timezone="UTC",
            description=f"Maintenance of {names}.",
        )(maintenance_schedule)
    except dg.DagsterInvalidDefinitionError as error:
        raise ValueError(f"{names}: invalid maintenance cron {cron!r}: {error}") from None
