"""When tables run: jobs, daily partitions, freshness and automation, free of Dagster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from lakehouse_dagster.lake.layout import TableName


@dataclass(frozen=True)
class Freshness:
    """Warn when a table has not been materialised for ``warn_after``; fail after ``fail_after``."""

    warn_after: timedelta
    fail_after: timedelta


class Automation(StrEnum):
    """How a table is kept up to date besides its job's schedule."""

    #: Rebuilt as soon as a table it reads from changes (declarative automation).
    EAGER = "eager"


@dataclass(frozen=True)
class Job:
    """A job runs its tables together; ``cron`` schedules it (UTC)."""

    name: str
    description: str
    cron: str | None = None


@dataclass(frozen=True)
class DailyPartitions:
    """Daily partitions by a date column.

    A range of days is built in one run (a single-run backfill) by ``job``, whose schedule
    builds the previous day at ``schedule_hour`` (UTC). ``start`` is the first day; a
    deployment may move it with ``LAKEHOUSE_PARTITIONS_START``.
    """

    name: str
    column: str
    start: date
    job: Job
    schedule_hour: int | None = None
    #: Where the days with data are: a table and a date or timestamp column of it. ``make run``
    #: builds every such day in one range.
    days_from: tuple[TableName, str] | None = None

    @property
    def touched_sensor_name(self) -> str:
        """The sensor that rebuilds the days that late changes touched."""
        return f"refresh_touched_{self.name}s"
