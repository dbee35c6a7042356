"""Daily partitions from their declarations, and the run tags that select a range of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import dagster as dg

from lakehouse_dagster.declarations.timing import DailyPartitions

# A run whose tags name a partition range materialises the range in one run (with the
# single-run backfill policy, one write per asset). These are Dagster's own tag names.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def partitions_definition(
    partitions: DailyPartitions, start: date | None = None
) -> dg.DailyPartitionsDefinition:
    """The declared partitions; ``start`` (the deployment's) moves their first day."""
    return dg.DailyPartitionsDefinition(start_date=(start or partitions.start).isoformat())


def range_tags(first: date, last: date) -> dict[str, str]:
    """Tags of a run over the partitions ``first`` to ``last``, both included."""
    return {PARTITION_RANGE_START_TAG: first.isoformat(), PARTITION_RANGE_END_TAG: last.isoformat()}


def contiguous_ranges(days: Iterable[date]) -> Iterator[tuple[date, date]]:
    """Runs of consecutive days, as (first, last) pairs."""
    ordered = sorted(set(days))
    if not ordered:
        return
    first = last = ordered[0]
    for day in ordered[1:]:
        if day == last + timedelta(days=1):
            last = day
        else:
            yield first, last
            first = last = day
    yield first, last


def existing_partition_days(days: Iterable[date], definition: dg.DailyPartitionsDefinition) -> list[date]:
    """The days that are partitions now (not before the start, not today or later)."""
    keys = set(definition.get_partition_keys())
    return sorted(day for day in set(days) if day.isoformat() in keys)


def unbuilt_upstream_days(
    instance: dg.DagsterInstance, upstream: Iterable[dg.AssetKey], days: Iterable[date]
) -> dict[dg.AssetKey, list[date]]:
    """The ``days`` each of ``upstream`` (partitioned like the asset that reads them) has never
    been materialised for: a build over them would read no rows and write an empty day."""
    wanted = sorted(days)
    missing = {}
    for key in upstream:
        built = instance.get_materialized_partitions(key)
        unbuilt = [day for day in wanted if day.isoformat() not in built]
        if unbuilt:
            missing[key] = unbuilt
    return missing


def describe_days(days: list[date]) -> str:
    """``2026-11-01..2026-11-03, 2026-11-07``; the first five ranges, then how many more."""
    ranges = [
        first.isoformat() if first == last else f"{first}..{last}" for first, last in contiguous_ranges(days)
    ]
    shown = ", ".join(ranges[:5])
    return shown + (f" and {len(ranges) - 5} more range(s)" if len(ranges) > 5 else "")
