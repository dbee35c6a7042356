"""Late CDC changes refresh the partitions of the order dates they touched."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg

from lakehouse_dagster.cdc.apply import TOUCHED_DATES
from lakehouse_dagster.defs.jobs import build_jobs
from lakehouse_dagster.defs.partitions import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    contiguous_ranges,
    existing_partition_days,
    partitions_definition,
)
from lakehouse_dagster.defs.sensors import touched_partitions_sensor
from lakehouse_dagster.domains.sales.tables import ORDER_DATES
from lakehouse_dagster.registry import REGISTRY

DEFINITION = partitions_definition(ORDER_DATES)


def test_days_group_into_contiguous_ranges() -> None:
    days = [date(2026, 11, 3), date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 2)]

    assert list(contiguous_ranges(days)) == [
        (date(2026, 11, 1), date(2026, 11, 3)),
        (date(2026, 11, 9), date(2026, 11, 9)),
    ]


def test_only_days_that_are_partitions_are_requested() -> None:
    before_start = date.fromordinal(ORDER_DATES.start.toordinal() - 1)
    assert existing_partition_days([before_start, ORDER_DATES.start, date(2999, 1, 1)], DEFINITION) == [
        ORDER_DATES.start
    ]


def report(instance: dg.DagsterInstance, touched: list[tuple[list[str], list[str]]]) -> None:
    for key, days in touched:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={TOUCHED_DATES: days}))


def sensor() -> dg.SensorDefinition:
    jobs = build_jobs(REGISTRY)
    return touched_partitions_sensor(REGISTRY, ORDER_DATES, jobs[ORDER_DATES.job], DEFINITION)


def test_the_sensor_watches_the_tables_whose_declarations_touch_the_partitions() -> None:
    touching = {str(table.name) for table in REGISTRY.touching(ORDER_DATES)}
    assert touching == {"silver.sales_orders", "silver.sales_order_items", "silver.sales_products"}
    assert sensor().name == "refresh_touched_order_dates"


def test_sensor_requests_one_run_per_range_of_touched_days_and_moves_its_cursor(capfd) -> None:
    refresh = sensor()
    with dg.DagsterInstance.ephemeral() as instance:
        report(
            instance, [(["silver", "silver.sales_orders"], ["2026-09-01"])]
        )  # before the sensor's first tick
        first = refresh(dg.build_sensor_context(instance=instance))
        report(
            instance,
            [
                (["silver", "silver.sales_orders"], ["2026-10-01", "2026-10-02"]),
                (["silver", "silver.sales_order_items"], ["2026-10-03", "2026-11-20"]),
                (["silver", "silver.customers"], ["2026-09-08"]),  # not watched
            ],
        )
        second = refresh(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        third = refresh(dg.build_sensor_context(instance=instance, cursor=second.cursor))

    assert first.run_requests == [], "what happened before the first tick was built already"
    assert set(json.loads(first.cursor)) == {
        "silver.sales_orders",
        "silver.sales_order_items",
        "silver.sales_products",
    }
    ranges = sorted(
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in second.run_requests
    )
    assert ranges == [("2026-10-01", "2026-10-03"), ("2026-11-20", "2026-11-20")]
    assert third.run_requests == []
    # Every tick says what it read and decided; a tick without runs says why it skipped.
    assert first.skip_reason and second.skip_reason is None
    assert "no touched partitions (0 new materialisation(s) read)" in third.skip_reason
    logged = capfd.readouterr().err
    assert "touched dates 2026-10-01..2026-10-03, 2026-11-20" in logged and "requesting 2 run(s)" in logged
    assert json.loads(third.cursor) == json.loads(second.cursor), "a readable cursor, by table name"


def test_a_cursor_without_a_watched_table_starts_after_its_history() -> None:
    """A cursor written before a table was watched (or by an earlier version, keyed otherwise)
    does not make the sensor rebuild every day the table ever touched."""
    refresh = sensor()
    with dg.DagsterInstance.ephemeral() as instance:
        report(instance, [(["silver", "silver.sales_order_items"], ["2026-10-05"])])
        old = json.dumps({"silver/sales_orders": 0, "silver/sales_order_items": 0})
        result = refresh(dg.build_sensor_context(instance=instance, cursor=old))
        report(instance, [(["silver", "silver.sales_order_items"], ["2026-10-06"])])
        after = refresh(dg.build_sensor_context(instance=instance, cursor=result.cursor))

    assert result.run_requests == []
    assert [
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in after.run_requests
    ] == [("2026-10-06", "2026-10-06")]


def test_a_backlog_larger_than_a_page_is_read_to_its_end(monkeypatch) -> None:
    """More materialisations than one page on one table: none is skipped by the cursor."""
    monkeypatch.setattr("lakehouse_dagster.defs.sensors.PAGE", 5)
    refresh = sensor()
    with dg.DagsterInstance.ephemeral() as instance:
        first = refresh(dg.build_sensor_context(instance=instance))
        days = [f"2026-10-{day:02d}" for day in range(1, 13)]
        # Twelve records on one table (more than two pages), then one on the other.
        report(instance, [(["silver", "silver.sales_order_items"], [day]) for day in days])
        report(instance, [(["silver", "silver.sales_orders"], ["2026-11-01"])])
        second = refresh(dg.build_sensor_context(instance=instance, cursor=first.cursor))

    requested = {
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]) for r in second.run_requests
    }
    assert requested == {("2026-10-01", "2026-10-12"), ("2026-11-01", "2026-11-01")}
