"""Refresh the partitions of the order dates that a CDC batch touched.

``silver.orders`` and ``silver.order_items`` report in their materialisation metadata
(``lakehouse/touched_dates``) the order dates of the changes they applied: a late status
change of a three-week-old order touches that order's date. This sensor turns those dates
into runs of the facts job, one run per range of consecutive days (a single-run backfill).
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from lakehouse_dagster.defs.partitions import contiguous_ranges, existing_partition_days, range_tags

TOUCHED_DATES = "lakehouse/touched_dates"
WATCHED = (dg.AssetKey(["silver", "orders"]), dg.AssetKey(["silver", "order_items"]))


def touched_partitions_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="refresh_touched_order_dates",
        job=job,
        minimum_interval_seconds=60,
        description="Rebuild the order-date partitions that applied CDC changes touched.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def refresh_touched_order_dates(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        if context.cursor is None:
            # First tick: what was applied before the sensor ran was built with it (make run,
            # a backfill, the schedule); start from the newest change applied.
            return dg.SensorResult(cursor=str(_newest_storage_id(context.instance)))
        after = int(context.cursor)
        days: set[date] = set()
        newest = after
        for key in WATCHED:
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1000, ascending=True
            ).records
            for record in records:
                newest = max(newest, record.storage_id)
                metadata = record.asset_materialization.metadata if record.asset_materialization else {}
                if TOUCHED_DATES in metadata:
                    days.update(date.fromisoformat(day) for day in metadata[TOUCHED_DATES].value)
        partitions = existing_partition_days(days)
        requests = [
            dg.RunRequest(run_key=f"{newest}:{first}:{last}", tags=range_tags(first, last))
            for first, last in contiguous_ranges(partitions)
        ]
        return dg.SensorResult(run_requests=requests, cursor=str(newest))

    return refresh_touched_order_dates


def _newest_storage_id(instance: dg.DagsterInstance) -> int:
    newest = 0
    for key in WATCHED:
        records = instance.fetch_materializations(key, limit=1).records
        if records:
            newest = max(newest, records[0].storage_id)
    return newest
