"""Ingest the files that landed since the last run into a bronze Delta table.

Auto Loader semantics, as batch reads of an explicit list of new files:

- exactly once: a ledger of ingested files (see ``ledger.py``) commits with the data;
- every row gets ``_source_file``, ``_source_file_modified_at``, ``_source_row``,
  ``_ingested_at`` and ``_batch_id``;
- ``_rescued_data`` keeps, as JSON text, what does not fit the schema: values that fail a
  column's type hint, columns in rescue mode, columns whose name differs only in case, and
  malformed lines (under ``_malformed_row``). The row is always kept;
- new columns follow the schema-evolution mode;
- empty and unparseable files are recorded in the ledger and reported, and the other
  files are still ingested.

Files are parsed on the driver (``csv_files.py``) and staged as one Parquet file per
batch, which Spark reads and appends to bronze in one commit. The plan stays shallow
however many files a batch has.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import reduce

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.csv_files import (
    MALFORMED_ROW,
    SOURCE_ROW,
    UnreadableFileError,
    parse_csv,
    read_header,
)
from lakehouse_dagster.ingest.ledger import EMPTY, INGESTED, REJECTED, IngestLedger, LedgerEntry
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.files import LandingFile
from lakehouse_dagster.lake.layout import TableName

SOURCE_FILE = "_source_file"
SOURCE_FILE_MODIFIED_AT = "_source_file_modified_at"
INGESTED_AT = "_ingested_at"
BATCH_ID = "_batch_id"
RESCUED_DATA = "_rescued_data"
METADATA_COLUMNS = (SOURCE_FILE, SOURCE_FILE_MODIFIED_AT, SOURCE_ROW, INGESTED_AT, BATCH_ID, RESCUED_DATA)
_RESCUE_PREFIX = "__rescue__"


class SchemaEvolutionMode(StrEnum):
    ADD_NEW_COLUMNS = "addNewColumns"
    RESCUE = "rescue"
    FAIL_ON_NEW_COLUMNS = "failOnNewColumns"


class SchemaEvolutionError(ValueError):
    """A file brings columns the table does not have, and the mode is failOnNewColumns."""


class MissingColumnError(ValueError):
    """A file lacks a column its source requires (a key, say); nothing was ingested."""


@dataclass(frozen=True)
class FileSource:
    """Files landing under ``<landing>/<folder>``."""

    folder: str
    #: The expected columns, in order; columns beyond them are new.
    columns: tuple[str, ...] = ()
    #: Schema hints: column -> Spark SQL type. Values that fail the cast are rescued.
    column_types: Mapping[str, str] = field(default_factory=dict)
    #: Columns every file must have (keys, say): a file without one fails the run, naming both.
    required_columns: tuple[str, ...] = ()
    suffix: str = ".csv"
    schema_evolution: SchemaEvolutionMode = SchemaEvolutionMode.ADD_NEW_COLUMNS
    max_files_per_batch: int = 10_000
    max_bytes_per_batch: int = 1 << 30


@dataclass
class IngestReport:
    target: TableName
    batches: list[str] = field(default_factory=list)
    files_ingested: int = 0
    files_empty: list[str] = field(default_factory=list)
    files_rejected: dict[str, str] = field(default_factory=dict)
    #: Files already ingested whose size or modification time changed since; not re-read.
    files_changed_ignored: list[str] = field(default_factory=list)
    rows_ingested: int = 0
    rows_rescued: int = 0
    new_columns: list[str] = field(default_factory=list)
    recovered_batches: list[str] = field(default_factory=list)
    abandoned_batches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _ColumnPlan:
    """How the columns of every file map onto the table."""

    table_columns: list[str]
    new_columns: list[str]
    rescued_columns: list[str]
    by_file: dict[str, dict[str, str]]  # file uri -> header column -> staging column


_VALID_NEW_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ingest_new_files(
    tables: DeltaTables,
    source: FileSource,
    target: TableName,
    *,
    log: logging.Logger,
    check_batch: Callable[[DataFrame], object] | None = None,
) -> IngestReport:
    """Ingest every file under the source folder that the ledger has not seen.

    ``check_batch`` sees each batch's rows before they are written, and may refuse them by
    raising (the table's ``fail`` expectations do).
    """
    report = IngestReport(target=target)
    ledger = IngestLedger(tables, target)
    recovery = ledger.recover()
    report.recovered_batches, report.abandoned_batches = recovery.committed, recovery.abandoned
    for batch_id in recovery.committed:
        log.warning(
            "%s: batch %s reached bronze but not the ledger (a run died); committed now", target, batch_id
        )
    for batch_id in recovery.abandoned:
        log.warning(
            "%s: batch %s never reached bronze (a run died); its files are new again", target, batch_id
        )
    files.delete_tree(tables.layout.staging_root(target))

    new_files = _new_files(ledger, source, tables.layout.landing_uri(source.folder), report, log)
    if not new_files:
        return report
    headers = _read_headers(new_files)
    plan = _plan_columns(tables, source, target, headers)
    report.new_columns = plan.new_columns
    for batch in _batches(new_files, source):
        _ingest_batch(tables, source, target, ledger, plan, headers, batch, report, log, check_batch)
    return report


def _new_files(
    ledger: IngestLedger, source: FileSource, folder: str, report: IngestReport, log: logging.Logger
) -> list[LandingFile]:
    known = ledger.ingested_files()
    new_files: list[LandingFile] = []
    for landed in files.list_files(folder, source.suffix):
        previous = known.get(landed.uri)
        if previous is None:
            new_files.append(landed)
        elif (previous.file.size, previous.file.modified_at) != (landed.size, landed.modified_at):
            if previous.outcome == REJECTED:
                new_files.append(landed)  # a rejected file is retried once it has been replaced
            else:
                report.files_changed_ignored.append(landed.uri)
    if report.files_changed_ignored:
        log.warning(
            "%s: %d ingested file(s) changed since and are not read again (exactly once per path), e.g. %s",
            ledger.target,
            len(report.files_changed_ignored),
            report.files_changed_ignored[0],
        )
    log.info("%s: %d new file(s) under %s", ledger.target, len(new_files), folder)
    return new_files


def _read_headers(new_files: list[LandingFile]) -> dict[str, list[str] | UnreadableFileError]:
    headers: dict[str, list[str] | UnreadableFileError] = {}
    for landed in new_files:
        if landed.size == 0:
            headers[landed.uri] = []
            continue
        try:
            headers[landed.uri] = read_header(files.read_head(landed.uri))
        except UnreadableFileError as error:
            headers[landed.uri] = error
    return headers


def _plan_columns(
    tables: DeltaTables,
    source: FileSource,
    target: TableName,
    headers: Mapping[str, list[str] | UnreadableFileError],
) -> _ColumnPlan:
    readable = {uri: header for uri, header in headers.items() if isinstance(header, list) and header}
    for uri, header in readable.items():
        missing = [column for column in source.required_columns if column not in header]
        if missing:
            raise MissingColumnError(
                f"{target}: file {uri} has no column(s) {', '.join(missing)}, which every file of "
                f"{source.folder} must have; nothing was ingested"
            )
    existing = (
        [c.name for c in tables.columns(target) if c.name not in METADATA_COLUMNS]
        if tables.exists(target)
        else []
    )
    known = existing + [c for c in source.columns if c not in existing]
    if not known and readable:
        known = list(next(iter(readable.values())))
    table_columns = list(known)
    by_lower = {c.lower(): c for c in table_columns}
    in_table = set(table_columns)
    new_columns: list[str] = []
    rescued: list[str] = []
    refused: dict[str, list[str]] = {}
    by_file: dict[str, dict[str, str]] = {}
    for uri, header in readable.items():
        mapping: dict[str, str] = {}
        for column in header:
            if column in in_table:
                mapping[column] = column
            elif column.lower() in by_lower or not _VALID_NEW_COLUMN.match(column):
                mapping[column] = _rescue(column, rescued)
            elif source.schema_evolution is SchemaEvolutionMode.FAIL_ON_NEW_COLUMNS:
                refused.setdefault(uri, []).append(column)
            elif source.schema_evolution is SchemaEvolutionMode.RESCUE:
                mapping[column] = _rescue(column, rescued)
            else:
                new_columns.append(column)
                table_columns.append(column)
                in_table.add(column)
                by_lower[column.lower()] = column
                mapping[column] = column
        by_file[uri] = mapping
    if refused:
        first_uri, columns = next(iter(refused.items()))
        raise SchemaEvolutionError(
            f"{target}: file {first_uri} has new column(s) {', '.join(columns)} and the schema evolution "
            f"mode is {SchemaEvolutionMode.FAIL_ON_NEW_COLUMNS.value}; nothing was ingested"
            + (f" ({len(refused)} files have new columns)" if len(refused) > 1 else "")
        )
    return _ColumnPlan(table_columns, new_columns, rescued, by_file)


def _rescue(column: str, rescued: list[str]) -> str:
    if column not in rescued:
        rescued.append(column)
    return _RESCUE_PREFIX + column


def _batches(new_files: list[LandingFile], source: FileSource) -> list[list[LandingFile]]:
    batches: list[list[LandingFile]] = []
    current: list[LandingFile] = []
    current_bytes = 0
    for landed in new_files:
        if current and (
            len(current) >= source.max_files_per_batch
            or current_bytes + landed.size > source.max_bytes_per_batch
        ):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(landed)
        current_bytes += landed.size
    if current:
        batches.append(current)
    return batches


def _ingest_batch(
    tables: DeltaTables,
    source: FileSource,
    target: TableName,
    ledger: IngestLedger,
    plan: _ColumnPlan,
    headers: Mapping[str, list[str] | UnreadableFileError],
    batch: list[LandingFile],
    report: IngestReport,
    log: logging.Logger,
    check_batch: Callable[[DataFrame], object] | None,
) -> None:
    ingested_at = datetime.now(UTC)
    batch_id = f"{ingested_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    entries: list[LedgerEntry] = []
    staged: list[pa.Table] = []
    staging_columns = _staging_columns(plan, batch)
    for landed in batch:
        entry, table = _parse_file(landed, headers[landed.uri], plan, staging_columns, batch_id, ingested_at)
        entries.append(entry)
        if table is not None:
            staged.append(table)
        if entry.outcome == REJECTED:
            report.files_rejected[landed.uri] = entry.message or ""
            log.warning("%s: rejected %s: %s", target, landed.uri, entry.message)
        elif entry.outcome == EMPTY:
            report.files_empty.append(landed.uri)
            log.warning("%s: %s has no data rows (%s)", target, landed.uri, entry.message)

    if not staged:
        ledger.mark_committed(entries)
        return

    staging_uri = tables.layout.staging_uri(target, batch_id)
    files.write_parquet(pa.concat_tables(staged), f"{staging_uri}/data.parquet")
    frame = _bronze_frame(tables.spark.read.parquet(staging_uri), plan, source)
    if check_batch is not None:
        check_batch(frame)
    counts = {
        row[SOURCE_FILE]: (row["rows"], row["rescued"])
        for row in frame.groupBy(SOURCE_FILE)
        .agg(F.count(F.lit(1)).alias("rows"), F.count(RESCUED_DATA).alias("rescued"))
        .collect()
    }
    entries = [
        replace(entry, rows=counts[entry.file.uri][0], rescued_rows=counts[entry.file.uri][1])
        if entry.file.uri in counts
        else entry
        for entry in entries
    ]
    ledger.mark_pending(entries)
    tables.append(target, frame, merge_schema=True)
    ledger.mark_committed(entries)
    files.delete_tree(staging_uri)

    report.batches.append(batch_id)
    report.files_ingested += sum(1 for entry in entries if entry.outcome == INGESTED)
    batch_rows = sum(rows for rows, _ in counts.values())
    report.rows_ingested += batch_rows
    report.rows_rescued += sum(rescued for _, rescued in counts.values())
    log.info("%s: batch %s appended %d rows from %d file(s)", target, batch_id, batch_rows, len(staged))


def _staging_columns(plan: _ColumnPlan, batch: list[LandingFile]) -> list[str]:
    rescue_columns = sorted(
        {staging for landed in batch for staging in plan.by_file.get(landed.uri, {}).values()}
        - set(plan.table_columns)
    )
    return [*plan.table_columns, *rescue_columns]


def _parse_file(
    landed: LandingFile,
    header: list[str] | UnreadableFileError,
    plan: _ColumnPlan,
    staging_columns: list[str],
    batch_id: str,
    ingested_at: datetime,
) -> tuple[LedgerEntry, pa.Table | None]:
    if isinstance(header, UnreadableFileError):
        return LedgerEntry(batch_id, landed, REJECTED, message=str(header)), None
    if not header:
        return LedgerEntry(batch_id, landed, EMPTY, message="empty file"), None
    try:
        parsed = parse_csv(files.read_bytes(landed.uri))
    except UnreadableFileError as error:
        return LedgerEntry(batch_id, landed, REJECTED, message=str(error)), None
    rows = parsed.table.num_rows
    if rows == 0:
        return LedgerEntry(batch_id, landed, EMPTY, message="header only"), None
    mapping = plan.by_file[landed.uri]
    by_staging = {staging: header_column for header_column, staging in mapping.items()}
    arrays = {
        name: parsed.table.column(by_staging[name]) if name in by_staging else pa.nulls(rows, pa.string())
        for name in staging_columns
    }
    arrays[SOURCE_ROW] = parsed.table.column(SOURCE_ROW)
    arrays[MALFORMED_ROW] = parsed.table.column(MALFORMED_ROW)
    timestamp = pa.timestamp("us", tz="UTC")
    arrays[SOURCE_FILE] = pa.repeat(pa.scalar(landed.uri, pa.string()), rows)
    arrays[SOURCE_FILE_MODIFIED_AT] = pa.repeat(pa.scalar(landed.modified_at, timestamp), rows)
    # Staged rather than added as Spark literals: literals are non-nullable columns, and the
    # engine cannot evolve the schema of a table with non-nullable columns.
    arrays[INGESTED_AT] = pa.repeat(pa.scalar(ingested_at, timestamp), rows)
    arrays[BATCH_ID] = pa.repeat(pa.scalar(batch_id, pa.string()), rows)
    return LedgerEntry(batch_id, landed, INGESTED, rows=rows), pa.table(arrays)


def _bronze_frame(staged: DataFrame, plan: _ColumnPlan, source: FileSource) -> DataFrame:
    """Type the hinted columns and gather everything that did not fit into ``_rescued_data``."""
    data_columns: list[Column] = []
    rescued: list[tuple[str, Column, Column]] = []  # (key, value, whether the row has it)
    for name in plan.table_columns:
        raw = F.col(f"`{name}`")
        hint = source.column_types.get(name)
        if hint is None:
            data_columns.append(raw.alias(name))
            continue
        typed = F.expr(f"try_cast(`{name}` AS {hint})")
        data_columns.append(typed.alias(name))
        failed = raw.isNotNull() & typed.isNull()
        rescued.append((name, F.when(failed, raw), failed))
    for name in staged.columns:
        if name.startswith(_RESCUE_PREFIX):
            value = F.col(f"`{name}`")
            rescued.append((name.removeprefix(_RESCUE_PREFIX), value, value.isNotNull()))
    malformed = F.col(MALFORMED_ROW)
    rescued.append((MALFORMED_ROW, malformed, malformed.isNotNull()))

    entries = F.create_map(*(part for key, value, _ in rescued for part in (F.lit(key), value)))
    as_json = F.to_json(F.map_filter(entries, lambda _key, value: value.isNotNull()))
    # Guarded by a cheap test: building the JSON for every row would triple the cost of a batch.
    has_rescued = reduce(lambda left, right: left | right, (present for _, _, present in rescued))
    return staged.select(
        *data_columns,
        F.col(SOURCE_FILE),
        F.col(SOURCE_FILE_MODIFIED_AT),
        F.col(SOURCE_ROW),
        F.col(INGESTED_AT),
        F.col(BATCH_ID),
        F.when(has_rescued, as_json).alias(RESCUED_DATA),
    )
