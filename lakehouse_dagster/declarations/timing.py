"""When tables run: jobs, daily partitions, freshness and automation, free of Dagster."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from lakehouse_dagster.lake.layout import TableName

#: Dagster's rule for the names of jobs, schedules and sensors.
_DAGSTER_NAME = re.compile(r"^[A-Za-z0-9_]+$")
#: Dagster's smallest freshness window.
_MIN_FRESHNESS = timedelta(minutes=1)


def check_dagster_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _DAGSTER_NAME.match(name):
        raise ValueError(
            f"{what} name {name!r} must be letters, digits and underscores only (Dagster's rule)"
        )


@dataclass(frozen=True)
class Freshness:
    """Warn when a table has not been materialised for ``warn_after``; fail after ``fail_after``."""

    warn_after: timedelta
    fail_after: timedelta

    def __post_init__(self) -> None:
        for setting in ("warn_after", "fail_after"):
            value = getattr(self, setting)
            if not isinstance(value, timedelta) or value < _MIN_FRESHNESS:
                raise ValueError(f"Freshness.{setting} ({value}): expected a timedelta of at least 1 minute")
        if self.warn_after >= self.fail_after:
            raise ValueError(
                f"Freshness.warn_after ({self.warn_after}) must be shorter than "
                f"fail_after ({self.fail_after})"
            )


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

    def __post_init__(self) -> None:
        check_dagster_name(self.name, "job")  # its cron is Dagster's to check: its error names the schedule


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

    def __post_init__(self) -> None:
        check_dagster_name(self.name, "partitioning")
        hour = self.schedule_hour
        if hour is not None and (not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23):
            raise ValueError(f"partitioning {self.name}: schedule_hour={hour!r}: expected an hour 0-23 (UTC)")
        days_from = self.days_from
        if days_from is not None and not (
            isinstance(days_from, tuple)
            and len(days_from) == 2
            and isinstance(days_from[0], TableName)
            and isinstance(days_from[1], str)
        ):
            raise ValueError(
                f"partitioning {self.name}: days_from={days_from!r}: expected (TableName, column)"
            )

    @property
    def touched_sensor_name(self) -> str:
        """The sensor that rebuilds the days that late changes touched."""
        return f"refresh_touched_{self.name}s"
