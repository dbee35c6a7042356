"""How a table is kept healthy: compaction, Z-order, VACUUM and row retention, free of Dagster.

A table declares what differs from the registry's default (``Registry.default_maintenance``);
``Registry.resolved()`` fills in the rest, so every field of a resolved ``Maintenance`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: Delta's own default (``delta.deletedFileRetentionDuration``): Databricks refuses a shorter
#: VACUUM unless its safety check is turned off, and readers of older versions need the files.
MIN_VACUUM_RETENTION_HOURS = 7 * 24
#: A century: more is a typo, and a cutoff that far back leaves the calendar.
MAX_RETENTION_DAYS = 36_600


@dataclass(frozen=True)
class Retention:
    """How many days rows are kept; None keeps them all (the default: retention is opt-in).

    - ``raw_rows_days``: rows of a bronze table, by ``_ingested_at`` (bronze tables only);
    - ``quarantine_days``: rows of ``quarantine.<table>``, by ``_quarantined_at``;
    - ``quality_history_days``: the table's records in ``ops.data_quality``, by ``recorded_at``.

    Expired rows are deleted by the maintenance run; their files go with the VACUUM of a run at
    least the VACUUM retention later (until then, time travel still shows them).
    """

    raw_rows_days: int | None = None
    quarantine_days: int | None = None
    quality_history_days: int | None = None

    def __post_init__(self) -> None:
        for name, days in asdict(self).items():
            if days is not None and (
                not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_RETENTION_DAYS
            ):
                raise ValueError(
                    f"Retention.{name}: expected whole days >= 1 and at most {MAX_RETENTION_DAYS} "
                    f"(a century), or None; got {days!r}"
                )

    @property
    def keeps_everything(self) -> bool:
        return all(days is None for days in asdict(self).values())

    def merged_over(self, default: Retention) -> Retention:
        """This retention, with ``default``'s value where this one says nothing."""
        mine, theirs = asdict(self), asdict(default)
        return Retention(**{name: mine[name] if mine[name] is not None else theirs[name] for name in mine})


@dataclass(frozen=True)
class Maintenance:
    """A table's maintenance: when it runs (``cron``, UTC), the columns data is Z-ordered by
    (``zorder_by``; empty: plain compaction of small files), how long VACUUM keeps the files of
    older versions (``vacuum_retention_hours``: time travel works inside this window) and how long
    rows are kept (``retention``). None: the registry's default."""

    cron: str | None = None
    zorder_by: tuple[str, ...] = ()
    vacuum_retention_hours: int | None = None
    retention: Retention = field(default_factory=Retention)

    def __post_init__(self) -> None:
        if isinstance(self.zorder_by, str):
            raise ValueError(f"Maintenance.zorder_by must be a tuple of column names, got {self.zorder_by!r}")
        hours = self.vacuum_retention_hours
        if hours is not None and (
            not isinstance(hours, int) or not MIN_VACUUM_RETENTION_HOURS <= hours <= MAX_RETENTION_DAYS * 24
        ):
            raise ValueError(
                f"Maintenance.vacuum_retention_hours={hours!r}: at least {MIN_VACUUM_RETENTION_HOURS} hours "
                "(7 days, Delta's default): a shorter VACUUM breaks time travel and readers of older "
                f"versions; at most {MAX_RETENTION_DAYS * 24} (a century)"
            )
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"Maintenance.cron={self.cron!r}: expected a cron expression of 5 fields (UTC)")

    def merged_over(self, default: Maintenance) -> Maintenance:
        """This maintenance, with ``default``'s settings where this one says nothing."""
        return Maintenance(
            cron=self.cron or default.cron,
            zorder_by=self.zorder_by or default.zorder_by,
            vacuum_retention_hours=self.vacuum_retention_hours or default.vacuum_retention_hours,
            retention=self.retention.merged_over(default.retention),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "zorder_by": list(self.zorder_by)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Maintenance:
        return cls(
            cron=raw.get("cron"),
            zorder_by=tuple(raw.get("zorder_by") or ()),
            vacuum_retention_hours=raw.get("vacuum_retention_hours"),
            retention=Retention(**(raw.get("retention") or {})),
        )


#: Every Sunday at 03:00 UTC, Z-order nothing, keep 7 days of versions, keep every row.
DEFAULT_MAINTENANCE = Maintenance(cron="0 3 * * 0", vacuum_retention_hours=MIN_VACUUM_RETENTION_HOURS)
