"""Jobs and schedules, derived from the registry's declarations."""

from __future__ import annotations

import dagster as dg

from lakehouse_dagster.declarations.table import Registry
from lakehouse_dagster.declarations.timing import Job


def build_jobs(registry: Registry) -> dict[Job, dg.UnresolvedAssetJobDefinition]:
    """One asset job per declared job: the default job runs every table that is not
    partitioned; each partitioning's job runs its tables by range. A served table's serving
    asset joins its table's job: the job ends with the warehouse loaded."""
    return {
        job: dg.define_asset_job(
            job.name,
            selection=dg.AssetSelection.assets(*job_asset_keys(registry, job)),
            description=job.description,
        )
        for job in registry.jobs()
    }


def job_asset_keys(registry: Registry, job: Job) -> list[dg.AssetKey]:
    tables = registry.job_tables(job)
    keys = [dg.AssetKey(t.name.key_path) for t in tables]
    return keys + [dg.AssetKey(t.served.key_path) for t in tables if t.served is not None]


def build_schedules(
    registry: Registry, jobs: dict[Job, dg.UnresolvedAssetJobDefinition]
) -> list[dg.ScheduleDefinition]:
    schedules = [
        dg.ScheduleDefinition(
            name=f"{job.name}_schedule", job=jobs[job], cron_schedule=job.cron, execution_timezone="UTC"
        )
        for job in registry.jobs()
        if job.cron
    ]
    for partitions in registry.partitionings():
        if partitions.schedule_hour is not None:
            # The previous day's partition, once the day's changes are in.
            schedules.append(
                dg.build_schedule_from_partitioned_job(
                    jobs[partitions.job],
                    hour_of_day=partitions.schedule_hour,
                    name=f"{partitions.job.name}_schedule",
                )
            )
    return schedules
