"""A table's maintenance as a unit of work: it runs wherever the table's builds run (in process,
in a subprocess, on a Databricks cluster), through the storage seam.

For the table, its quarantine, the ops tables only its unit writes (ingest ledger, stream
checkpoints, CDC progress) and the shared ops tables (quality history, local metrics), each that exists:

1. expire rows, where the declaration asks for it: the table's raw rows (bronze, by
   ``_ingested_at``), its quarantine rows (by ``_quarantined_at``), its records of the quality
   history (by ``recorded_at``), older than the retention in days;
2. compact small files, and Z-order the table by its declared columns;
3. VACUUM the files that no version inside the retention window needs;
4. delete the scratch folders under ``_staging/`` of these tables in which nothing changed for
   as long as the VACUUM retention: a writer killed mid-batch leaves its folder behind (a live
   writer's folder is younger, however long its run).

It reports the files and bytes of the table's current version before and after, the files
vacuumed and the rows expired, for the table and for each of the others, and the staging
folders and bytes removed.

Rows expire relative to the earlier of the run's as-of date and today: a fixed as-of date in
the future never expires rows younger than their retention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from lakehouse_dagster.cdc.apply import progress_table
from lakehouse_dagster.declarations.maintenance import MIN_VACUUM_RETENTION_HOURS, Maintenance
from lakehouse_dagster.ingest.ledger import ledger_table
from lakehouse_dagster.ingest.sources import INGESTED_AT
from lakehouse_dagster.lake.delta import ConcurrentWriteError, TableFiles
from lakehouse_dagster.lake.files import Removed, remove_stale_entries
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.monitoring.metrics import METRICS_TABLE
from lakehouse_dagster.quality.history import DATA_QUALITY
from lakehouse_dagster.quality.quarantine import QUARANTINED_AT, quarantine_table
from lakehouse_dagster.stream.checkpoints import checkpoint_table
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult

PREFIX = "lakehouse/maintenance"


@dataclass(frozen=True)
class Expiry:
    """Rows whose ``column`` is older than ``days`` (and whose ``where`` columns match) expire."""

    column: str
    days: int
    where: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A Delta table a maintenance run keeps healthy."""

    name: TableName
    zorder_by: tuple[str, ...] = ()
    expiry: Expiry | None = None


@dataclass
class Outcome:
    files_before: TableFiles
    files_after: TableFiles
    files_rewritten: int = 0
    files_vacuumed: int | None = 0
    rows_expired: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "files_before": self.files_before.files,
            "files_after": self.files_after.files,
            "bytes_before": self.files_before.bytes,
            "bytes_after": self.files_after.bytes,
            "files_rewritten": self.files_rewritten,
            "files_vacuumed": self.files_vacuumed,
            "rows_expired": self.rows_expired,
        }


def targets(context: UnitContext, maintenance: Maintenance) -> list[Target]:
    """The table first, then its quarantine, its own ops tables and the shared ones."""
    table, retention = context.table, maintenance.retention
    name = table.name

    def expiry(column: str, days: int | None, **where: str) -> Expiry | None:
        return Expiry(column, days, where) if days is not None else None

    raw_rows = retention.raw_rows_days if table.source is not None else None

    found = [Target(name, maintenance.zorder_by, expiry(INGESTED_AT, raw_rows))]
    if table.quarantines:  # a table without drop expectations may share the name of one with them
        found.append(Target(quarantine_table(name), expiry=expiry(QUARANTINED_AT, retention.quarantine_days)))
    if table.source is not None:
        found.append(Target(ledger_table(name)))
    if table.stream is not None:
        found.append(Target(checkpoint_table(name)))
    if table.cdc is not None:
        found.append(Target(progress_table(name)))
    found.append(
        Target(DATA_QUALITY, expiry=expiry("recorded_at", retention.quality_history_days, asset=str(name)))
    )
    found.append(Target(METRICS_TABLE))
    return found


def maintain(context: UnitContext) -> UnitResult:
    maintenance = context.request.maintenance
    assert maintenance is not None, "a maintenance unit needs the table's maintenance"
    tables, name = context.tables, context.name
    hours = maintenance.vacuum_retention_hours or MIN_VACUUM_RETENTION_HOURS
    now = datetime.now(UTC)
    # Midnight of the earlier day: the same rows expire whatever the hour of the run.
    anchor = datetime.combine(min(context.request.as_of_date, now.date()), time(), UTC)
    outcomes: dict[TableName, Outcome] = {}
    found = targets(context, maintenance)
    for target in found:
        if tables.exists(target.name):
            outcomes[target.name] = _maintain(context, target, hours, anchor)
    # Also where the table does not exist yet: a first build killed before its commit.
    swept = _sweep_staging(context, [target.name for target in found], now - timedelta(hours=hours))
    metadata: dict[str, Any] = {
        f"{PREFIX}/zorder_by": list(maintenance.zorder_by),
        f"{PREFIX}/vacuum_retention_hours": hours,
        f"{PREFIX}/retention_days": {
            "raw_rows": maintenance.retention.raw_rows_days,
            "quarantine": maintenance.retention.quarantine_days,
            "quality_history": maintenance.retention.quality_history_days,
        },
        f"{PREFIX}/tables": {str(table): outcome.as_metadata() for table, outcome in outcomes.items()},
        f"{PREFIX}/staging_folders_removed": swept.entries,
        f"{PREFIX}/staging_bytes_removed": swept.bytes,
    }
    own = outcomes.get(name)
    if own is None:
        context.log.info("%s does not exist yet: nothing to maintain", name)
        metadata[f"{PREFIX}/skipped"] = "the table does not exist yet"
        return UnitResult(str(name), metadata=metadata)
    # The table's own figures, flat, so that the UI plots them run after run.
    metadata.update({f"{PREFIX}/{key}": value for key, value in own.as_metadata().items()})
    quarantine, history = outcomes.get(quarantine_table(name)), outcomes.get(DATA_QUALITY)
    metadata[f"{PREFIX}/quarantine_rows_expired"] = quarantine.rows_expired if quarantine else 0
    metadata[f"{PREFIX}/quality_history_rows_expired"] = history.rows_expired if history else 0
    metadata["lakehouse/delta_version"] = tables.version(name)
    metadata["dagster/table_name"] = tables.layout.catalog_name(name)
    return UnitResult(str(name), uri=tables.uri(name), metadata=metadata)


def _sweep_staging(context: UnitContext, names: list[TableName], older_than: datetime) -> Removed:
    total = Removed()
    for name in names:
        root = context.tables.layout.staging_root(name)
        removed = remove_stale_entries(root, older_than)
        if removed.entries:
            context.log.info(
                "%s: %d stale staging folder(s), %d bytes removed (untouched since %s)",
                root,
                removed.entries,
                removed.bytes,
                older_than.isoformat(),
            )
        total += removed
    return total


def _maintain(context: UnitContext, target: Target, hours: int, anchor: datetime) -> Outcome:
    tables, log = context.tables, context.log
    before = tables.files(target.name)
    expired = 0
    if target.expiry is not None:
        cutoff = anchor - timedelta(days=target.expiry.days)
        expired = tables.delete_older_than(target.name, target.expiry.column, cutoff, target.expiry.where)
        log.info("%s: %d row(s) older than %s expired", target.name, expired, cutoff.isoformat())
    rewritten = tables.optimize(target.name, target.zorder_by)
    try:
        vacuumed = tables.vacuum(target.name, hours)
    except ConcurrentWriteError:
        raise
    except Exception as error:
        raise RuntimeError(
            f"{target.name}: VACUUM retaining {hours} hours (vacuum_retention_hours of {context.name}'s "
            f"maintenance) failed; a table property such as delta.deletedFileRetentionDuration may ask "
            f"for more: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
        ) from error
    after = tables.files(target.name)
    log.info(
        "%s: %d file(s), %d bytes -> %d file(s), %d bytes%s; %s file(s) vacuumed (retention %d hours)",
        target.name,
        before.files,
        before.bytes,
        after.files,
        after.bytes,
        f", Z-ordered by {', '.join(target.zorder_by)}" if target.zorder_by else "",
        "unknown" if vacuumed is None else vacuumed,
        hours,
    )
    return Outcome(before, after, rewritten["files_removed"], vacuumed, expired)
