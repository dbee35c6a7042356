"""Rebuild the partitions whose days late CDC changes touched.

A CDC table whose declaration says it touches a daily partitioning (``AutoCdc.touches``)
reports in its materialisation metadata (``TOUCHED_DATES``) the days of the changes it
applied: a late status change of a three-week-old order touches that order's date. One
sensor per partitioning turns those days into runs of its job, one run per range of
consecutive days (a single-run backfill).

The cursor holds, per watched table, the storage id of the last materialisation read, as
JSON. Every record after it is read, page by page, before the cursor moves.
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg

from lakehouse_dagster.cdc.apply import TOUCHED_DATES
from lakehouse_dagster.declarations.table import Registry
from lakehouse_dagster.declarations.timing import DailyPartitions
from lakehouse_dagster.defs.partitions import contiguous_ranges, existing_partition_days, range_tags

PAGE = 1000


def touched_partitions_sensor(
    registry: Registry,
    partitions: DailyPartitions,
    job: dg.UnresolvedAssetJobDefinition,
    definition: dg.DailyPartitionsDefinition,
) -> dg.SensorDefinition:
    watched = [dg.AssetKey(table.name.key_path) for table in registry.touching(partitions)]

    @dg.sensor(
        name=partitions.touched_sensor_name,
        job=job,
        minimum_interval_seconds=60,
        description=f"Rebuild the {partitions.name} partitions that changes applied to "
        f"{', '.join(key.to_user_string() for key in watched)} touched.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def refresh_touched(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        if context.cursor is None:
            # First tick: what was applied before the sensor ran was built with it (make run,
            # a backfill, the schedule); start from the newest change applied.
            cursor = {key.to_user_string(): _newest_storage_id(context.instance, key) for key in watched}
            context.log.info("first tick: starting after %s", cursor)
            return dg.SensorResult(cursor=json.dumps(cursor, sort_keys=True))
        cursor = json.loads(context.cursor)
        days: set[date] = set()
        for key in watched:
            after = cursor.get(key.to_user_string(), 0)
            read, newest = _touched_days_after(context.instance, key, after)
            days |= read
            cursor[key.to_user_string()] = newest
        ranges = list(contiguous_ranges(existing_partition_days(days, definition)))
        if days:
            context.log.info(
                "touched %d day(s) %s: requesting %d run(s) of %s",
                len(days),
                ", ".join(f"{first}..{last}" for first, last in ranges) or "(none are partitions)",
                len(ranges),
                job.name,
            )
        token = "-".join(str(cursor[k]) for k in sorted(cursor))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"{token}:{first}:{last}", tags=range_tags(first, last))
                for first, last in ranges
            ],
            cursor=json.dumps(cursor, sort_keys=True),
        )

    return refresh_touched


def _touched_days_after(instance: dg.DagsterInstance, key: dg.AssetKey, after: int) -> tuple[set[date], int]:
    """The days in every materialisation of ``key`` after storage id ``after``, and the newest id."""
    days: set[date] = set()
    newest = after
    page_cursor = None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after),
            limit=PAGE,
            cursor=page_cursor,
            ascending=True,
        )
        for record in page.records:
            newest = max(newest, record.storage_id)
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            if TOUCHED_DATES in metadata:
                days.update(date.fromisoformat(day) for day in metadata[TOUCHED_DATES].value)
        if not page.has_more:
            return days, newest
        page_cursor = page.cursor


def _newest_storage_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else 0
