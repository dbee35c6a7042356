"""Late CDC changes refresh the partitions of the order dates they touched."""

from __future__ import annotations

from datetime import date

import dagster as dg

from lakehouse_dagster.defs.jobs import build_jobs
from lakehouse_dagster.defs.partitions import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    contiguous_ranges,
    existing_partition_days,
)
from lakehouse_dagster.defs.sensors import TOUCHED_DATES, touched_partitions_sensor
from lakehouse_dagster.units import ALL_UNITS


def test_days_group_into_contiguous_ranges() -> None:
    days = [date(2026, 11, 3), date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 2)]

    assert list(contiguous_ranges(days)) == [
        (date(2026, 11, 1), date(2026, 11, 3)),
        (date(2026, 11, 9), date(2026, 11, 9)),
    ]


def test_only_days_that_are_partitions_are_requested() -> None:
    assert existing_partition_days([date(2024, 12, 31), date(2025, 1, 1), date(2999, 1, 1)]) == [
        date(2025, 1, 1)
    ]


def report(instance: dg.DagsterInstance, touched: list[tuple[list[str], list[str]]]) -> None:
    for key, days in touched:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={TOUCHED_DATES: days}))


def test_sensor_requests_one_run_per_range_of_touched_days_and_moves_its_cursor() -> None:
    _, facts_job = build_jobs(ALL_UNITS)
    sensor = touched_partitions_sensor(facts_job)
    with dg.DagsterInstance.ephemeral() as instance:
        report(instance, [(["silver", "orders"], ["2026-09-01"])])  # before the sensor's first tick
        first = sensor(dg.build_sensor_context(instance=instance))
        report(
            instance,
            [
                (["silver", "orders"], ["2026-10-01", "2026-10-02"]),
                (["silver", "order_items"], ["2026-10-03", "2026-11-20"]),
                (["silver", "customers"], ["2026-08-01"]),  # not watched
            ],
        )
        second = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        third = sensor(dg.build_sensor_context(instance=instance, cursor=second.cursor))

    assert first.run_requests == [], "what happened before the first tick was built already"
    ranges = sorted(
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in second.run_requests
    )
    assert ranges == [("2026-10-01", "2026-10-03"), ("2026-11-20", "2026-11-20")]
    assert third.run_requests == []
