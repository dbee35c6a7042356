"""Jobs and schedules."""

from __future__ import annotations

import dagster as dg

LAKEHOUSE_JOB_NAME = "lakehouse_job"

#: Every table, bronze to gold. Runs are tagged as Spark-heavy for the run queue's limit.
lakehouse_job = dg.define_asset_job(
    LAKEHOUSE_JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Ingest new landed files and rebuild every table, bronze to gold.",
    tags={"lakehouse/engine": "spark"},
)

daily_lakehouse_schedule = dg.ScheduleDefinition(
    name="daily_lakehouse",
    job=lakehouse_job,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
)
