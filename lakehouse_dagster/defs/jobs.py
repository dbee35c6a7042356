"""Jobs and schedules."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from lakehouse_dagster.units.base import TableUnit

LAKEHOUSE_JOB_NAME = "lakehouse_job"
SALES_FACTS_JOB_NAME = "sales_facts_job"
#: Runs are tagged as Spark-heavy for the run queue's limit (dagster.yaml).
SPARK_TAGS = {"lakehouse/engine": "spark"}


def _keys(units: Sequence[TableUnit], *, partitioned: bool) -> list[dg.AssetKey]:
    return [dg.AssetKey(unit.name.key_path) for unit in units if unit.partitioned == partitioned]


def build_jobs(
    units: Sequence[TableUnit],
) -> tuple[dg.UnresolvedAssetJobDefinition, dg.UnresolvedAssetJobDefinition]:
    lakehouse_job = dg.define_asset_job(
        LAKEHOUSE_JOB_NAME,
        selection=dg.AssetSelection.assets(*_keys(units, partitioned=False)),
        description="Ingest newly landed files, apply changes and rebuild every table that is not "
        "partitioned, bronze to gold.",
        tags=SPARK_TAGS,
    )
    sales_facts_job = dg.define_asset_job(
        SALES_FACTS_JOB_NAME,
        selection=dg.AssetSelection.assets(*_keys(units, partitioned=True)),
        description="Rebuild the facts and daily sales of a day or a range of days (one run per range).",
        tags=SPARK_TAGS,
    )
    return lakehouse_job, sales_facts_job


def build_schedules(
    lakehouse_job: dg.UnresolvedAssetJobDefinition, sales_facts_job: dg.UnresolvedAssetJobDefinition
) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name="daily_lakehouse", job=lakehouse_job, cron_schedule="0 5 * * *", execution_timezone="UTC"
        ),
        # Yesterday's partition, once the day's changes are in.
        dg.build_schedule_from_partitioned_job(sales_facts_job, hour_of_day=6, name="daily_sales_facts"),
    ]
