"""Rebuild the partitions whose days late CDC changes touched.

A CDC table whose declaration says it touches a daily partitioning (``AutoCdc.touches``)
reports in its materialisation metadata (``TOUCHED_DATES``) the days of the changes it
applied: a late status change of a three-week-old order touches that order's date. One
sensor per partitioning turns those days into runs of its job, one run per range of
consecutive days (a single-run backfill).

The cursor holds, per watched table (by name), the storage id of the last materialisation read,
as JSON: ``{"silver.sales_order_items": 812, "silver.sales_orders": 790}``. Every record after
it is read, page by page, before the cursor moves. Every tick logs what it read and decided.
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg

from lakehouse_dagster.cdc.apply import TOUCHED_DATES, TOUCHED_REPORTED_THROUGH
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
    watched = {str(table.name): dg.AssetKey(table.name.key_path) for table in registry.touching(partitions)}

    @dg.sensor(
        name=partitions.touched_sensor_name,
        job=job,
        minimum_interval_seconds=60,
        description=f"Rebuild the {partitions.name} partitions that changes applied to "
        f"{', '.join(watched)} touched: one run of {job.name} per range of consecutive days. "
        "Cursor: per table, the storage id of the last materialisation read.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def refresh_touched(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        if context.cursor is None:
            # First tick: what was applied before the sensor ran was built with it (make run,
            # a backfill, the schedule); start from the newest change applied.
            cursor = {name: _newest_storage_id(context.instance, key) for name, key in watched.items()}
            context.log.info(f"first tick: starting after the latest materialisations {_shown(cursor)}")
            return dg.SensorResult(
                cursor=json.dumps(cursor, sort_keys=True),
                skip_reason="first tick: changes applied before now were built with them",
            )
        cursor = _read_cursor(context.instance, context.cursor, watched)
        days: set[date] = set()
        read = 0
        for name, key in watched.items():
            touched, newest, count = _touched_days_after(context.instance, key, cursor[name])
            days |= touched
            read += count
            cursor[name] = newest
        ranges = list(contiguous_ranges(existing_partition_days(days, definition)))
        shown = ", ".join(f"{first}..{last}" if first != last else str(first) for first, last in ranges)
        if ranges:
            context.log.info(
                f"touched dates {shown} ({len(days)} day(s) in {read} new materialisation(s)): "
                f"requesting {len(ranges)} run(s) of {job.name}"
            )
        else:
            why = (
                f"{read} new materialisation(s) touched {len(days)} day(s), none of them a partition yet"
                if days
                else f"{read} new materialisation(s), no touched dates"
            )
            context.log.info(f"{why}: no run")
        token = "-".join(str(cursor[name]) for name in sorted(cursor))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"{token}:{first}:{last}", tags=range_tags(first, last))
                for first, last in ranges
            ],
            cursor=json.dumps(cursor, sort_keys=True),
            skip_reason=None if ranges else f"no touched partitions ({read} new materialisation(s) read)",
        )

    return refresh_touched


def _shown(cursor: dict[str, int]) -> str:
    return ", ".join(f"{name}: {storage_id}" for name, storage_id in sorted(cursor.items()))


def _read_cursor(instance: dg.DagsterInstance, raw: str, watched: dict[str, dg.AssetKey]) -> dict[str, int]:
    """Per watched table, the last storage id read; a table not in the cursor (newly watched,
    or a cursor of an earlier format) starts after its newest materialisation, as on a first
    tick."""
    stored = json.loads(raw)
    if not isinstance(stored, dict):  # the first format: one storage id for every table
        stored = {}
    return {
        name: int(stored[name]) if name in stored else _newest_storage_id(instance, key)
        for name, key in watched.items()
    }


def _touched_days_after(
    instance: dg.DagsterInstance, key: dg.AssetKey, after: int
) -> tuple[set[date], int, int]:
    """The days in every materialisation of ``key`` after storage id ``after``, the newest id,
    and how many materialisations were read."""
    days: set[date] = set()
    newest, count = after, 0
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
            count += 1
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            if TOUCHED_DATES in metadata:
                days.update(date.fromisoformat(day) for day in metadata[TOUCHED_DATES].value)
        if not page.has_more:
            return days, newest, count
        page_cursor = page.cursor


def _newest_storage_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> int:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else 0


def touched_reported_through(instance: dg.DagsterInstance, key: dg.AssetKey) -> int:
    """How far the table's latest materialisation reported its touched dates (its progress
    records' ``applied_at``, in microseconds); 0 without one that says (the table's first
    build, or the first since an upgrade): every record that keeps its dates is reported then,
    so a first build that died after recording its progress loses no date either."""
    latest = instance.get_latest_materialization_event(key)
    materialization = latest.asset_materialization if latest is not None else None
    value = materialization.metadata.get(TOUCHED_REPORTED_THROUGH) if materialization else None
    return int(value.value) if value is not None and value.value is not None else 0
