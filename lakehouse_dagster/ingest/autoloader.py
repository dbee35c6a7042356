"""Ingest files into a bronze Delta table with Auto Loader semantics: the second step.

``ingest`` takes the files that ``discovery`` finds new (or that the caller names), claims
them in the ledger, and writes them batch by batch:

- exactly once: claims are atomic, and each batch's bronze commit carries its batch id as a
  Delta application transaction id (see ``ledger.py``); a batch left open by a run that died
  is completed by the next run;
- every row gets ``_source_file``, ``_source_file_modified_at``, ``_source_row``,
  ``_ingested_at`` and ``_batch_id``, and what does not fit goes to ``_rescued_data``
  (``staging.py``); new columns follow the schema-evolution mode (``columns.py``);
- empty and unparseable files are recorded in the ledger and reported, and the other files
  are still ingested.

Files are parsed and typed on the driver with Arrow and staged as one Parquet file per batch,
which the storage seam appends in one commit: the plan stays shallow however many files a
batch has.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.ingest.columns import ColumnPlan, Header, VanishedFileError, plan_columns, read_headers
from lakehouse_dagster.ingest.csv_files import ParsedCsv, UnreadableFileError, parse_csv
from lakehouse_dagster.ingest.discovery import Discovery, discover, list_candidates, named_candidates
from lakehouse_dagster.ingest.ledger import (
    EMPTY,
    INGESTED,
    REJECTED,
    Claim,
    IngestLedger,
    LedgerEntry,
    claim_with_retries,
)
from lakehouse_dagster.ingest.sources import BATCH_ID, RESCUED_DATA, SOURCE_FILE, FileSource
from lakehouse_dagster.ingest.staging import bronze_rows, bronze_schema
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName

#: Files parsed, typed and written at once: one per core (each holds one file's rows in memory).
_STAGING_THREADS = max(1, min(4, os.cpu_count() or 1))

CheckBatch = Callable[[DataFrame], object]


@dataclass
class IngestReport:
    target: TableName
    batches: list[str] = field(default_factory=list)
    files_ingested: int = 0
    files_empty: list[str] = field(default_factory=list)
    files_rejected: dict[str, str] = field(default_factory=dict)
    #: Files already ingested whose content changed since; not read again.
    files_changed_ignored: list[str] = field(default_factory=list)
    #: Files a concurrent writer claimed first (now, or in a batch still open): it ingests them.
    files_claimed_elsewhere: int = 0
    rows_ingested: int = 0
    rows_rescued: int = 0
    new_columns: list[str] = field(default_factory=list)
    #: Batches a run that died left open, completed by this run.
    recovered_batches: list[str] = field(default_factory=list)
    #: Batches this run wrote too, but another writer committed first (counted there).
    batches_committed_elsewhere: list[str] = field(default_factory=list)
    #: Named files that no longer existed, skipped (``skip_missing``).
    files_missing: list[str] = field(default_factory=list)


def ingest(
    tables: DeltaTables,
    source: FileSource,
    target: TableName,
    *,
    log: logging.Logger,
    uris: Sequence[str] | None = None,
    check_batch: CheckBatch | None = None,
    skip_missing: bool = False,
) -> IngestReport:
    """Ingest the files of ``source`` that are new: every visible file of its folder, or only
    ``uris`` when given (a missing one fails the run, naming it, unless ``skip_missing``: then
    it is logged and reported). ``check_batch`` sees each batch's rows before they are written
    and may refuse them by raising (the table's ``fail`` expectations do); the batch is then
    released.
    """
    return _Ingestion(tables, source, target, log, check_batch).run(uris, skip_missing)


def create_empty_table(tables: DeltaTables, source: FileSource, target: TableName) -> None:
    """Create ``target`` with the source's declared columns, the metadata columns and no rows,
    typed as its batches are (a concurrent creator wins; nothing is appended then)."""
    token = f"empty-{new_batch_id()}"
    staging_uri = tables.layout.staging_uri(target, token)
    try:
        schema = bronze_schema(ColumnPlan(list(source.columns), [], {}), source)
        with files.parquet_writer(f"{staging_uri}/data.parquet", schema):
            pass
        if not tables.exists(target):
            tables.append_staged(target, staging_uri, token=token)
    finally:
        files.delete_tree(staging_uri)


def new_batch_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


class _Ingestion:
    def __init__(
        self,
        tables: DeltaTables,
        source: FileSource,
        target: TableName,
        log: logging.Logger,
        check_batch: CheckBatch | None,
    ) -> None:
        self.tables, self.source, self.target = tables, source, target
        self.log, self.check_batch = log, check_batch
        self.ledger = IngestLedger(tables, target)
        self.report = IngestReport(target=target)

    def run(self, uris: Sequence[str] | None, skip_missing: bool) -> IngestReport:
        for batch_id, claims in self.ledger.open_batches().items():
            self.log.warning(
                "%s: batch %s was left open by a run that died; completing it", self.target, batch_id
            )
            self._complete_open_batch(batch_id, claims)
            self.report.recovered_batches.append(batch_id)
        layout = self.tables.layout
        if uris is None:
            candidates = list_candidates(layout, self.source)
        else:
            candidates, missing = named_candidates(layout, self.source, uris, skip_missing=skip_missing)
            self.report.files_missing = missing
            if missing:
                self.log.warning(
                    "%s: %d named file(s) no longer exist, skipped, e.g. %s",
                    self.target,
                    len(missing),
                    missing[0],
                )
        found = discover(self.ledger, candidates)
        self._log_discovery(found)
        if not found.new:
            return self.report
        headers = read_headers([claim.file for claim in found.new], layout.aws)
        plan = plan_columns(self.tables, self.source, self.target, headers)
        for batch in _batches(found.new, self.source):
            batch_id = new_batch_id()
            won = claim_with_retries(self.ledger, batch, batch_id)
            self.report.files_claimed_elsewhere += len(batch) - len(won)
            if won:
                self._ingest_batch(plan, headers, batch_id, won)
        return self.report

    def _log_discovery(self, found: Discovery) -> None:
        self.report.files_changed_ignored = found.changed
        self.report.files_claimed_elsewhere += found.in_open_batches
        if found.changed:
            self.log.warning(
                "%s: %d ingested file(s) changed since; not read again (exactly once per path), e.g. %s",
                self.target,
                len(found.changed),
                found.changed[0],
            )
        self.log.info(
            "%s: %d new file(s), %d known, %d in open batches",
            self.target,
            len(found.new),
            found.known,
            found.in_open_batches,
        )

    def _complete_open_batch(self, batch_id: str, claims: list[Claim]) -> None:
        """A batch whose rows reached bronze only needs its ledger entries; one that did not is
        ingested again under the same id (its bronze commit can only happen once)."""
        counts = self._bronze_counts(batch_id)
        if counts:
            # A file without rows there was empty or rejected, or changed or vanished: read again
            # to tell which (its listed version's outcome is not known, so not recorded as empty).
            aws = self.tables.layout.aws
            entries = [
                _entry_from_counts(claim, counts)
                if claim.file.uri in counts
                else _entry_without_rows(claim, aws)
                for claim in claims
            ]
            self.ledger.commit(batch_id, entries)
            # Its rows are the dead run's to count; its files without rows are reported here.
            self._account_files([entry for entry in entries if entry.outcome != INGESTED])
            return
        headers = read_headers([claim.file for claim in claims], self.tables.layout.aws)
        self._ingest_batch(
            plan_columns(self.tables, self.source, self.target, headers), headers, batch_id, claims
        )

    def _ingest_batch(
        self, plan: ColumnPlan, headers: Mapping[str, Header], batch_id: str, claims: list[Claim]
    ) -> None:
        staging_uri = self.tables.layout.staging_uri(self.target, batch_id)
        plan = plan.for_files(claim.file.uri for claim in claims)
        written_here = True
        try:
            entries = self._stage(plan, headers, batch_id, claims, staging_uri)
            # A file rejected while it was read (its header changed) adds none of its columns.
            ingested = plan.for_files(e.claim.file.uri for e in entries if e.outcome == INGESTED)
            if ingested.new_columns != plan.new_columns:
                for staged in files.list_parquet(staging_uri):
                    files.drop_parquet_columns(
                        staged, sorted(set(plan.new_columns) - set(ingested.new_columns))
                    )
                plan = ingested
            if any(entry.rows for entry in entries):
                if self.check_batch is not None:
                    self.check_batch(self.tables.spark.read.parquet(staging_uri))
                written_here = self.tables.append_staged(self.target, staging_uri, token=batch_id)
                if not written_here:
                    self.log.warning(
                        "%s: batch %s was committed by another writer meanwhile", self.target, batch_id
                    )
                    counts = self._bronze_counts(batch_id)
                    entries = [
                        _entry_from_counts(e.claim, counts, e) if e.outcome == INGESTED else e
                        for e in entries
                    ]
            self.ledger.commit(batch_id, entries)
        except BaseException as error:
            self._release_unless_written(batch_id, claims, error)
            raise
        finally:
            files.delete_tree(staging_uri)
        if written_here:
            added = plan.declared_new if any(entry.rows for entry in entries) else []
            self._account(batch_id, entries, [*added, *plan.new_columns])
        else:
            self.report.batches_committed_elsewhere.append(batch_id)

    def _stage(
        self,
        plan: ColumnPlan,
        headers: Mapping[str, Header],
        batch_id: str,
        claims: list[Claim],
        staging_uri: str,
    ) -> list[LedgerEntry]:
        """Parse, type and write the batch's files on the machine's cores (Arrow's kernels and
        Parquet writer release the GIL): each thread writes the files it parses into a staged
        Parquet file of its own under ``staging_uri``, so that no core waits for another's
        write. A thread holds one file's rows at a time. Returns the files' entries, in order."""
        ingested_at = datetime.now(UTC)
        aws = self.tables.layout.aws
        with files.parquet_per_thread(staging_uri, bronze_schema(plan, self.source)) as staged:

            def stage_file(claim: Claim) -> LedgerEntry:
                entry, parsed = _parse_file(claim, headers.get(claim.file.uri), plan, aws)
                if parsed is None:
                    return entry
                mapping = plan.by_file[claim.file.uri]
                rows = bronze_rows(parsed, mapping, plan, self.source, claim.file, batch_id, ingested_at)
                staged.write_table(rows)
                return replace(entry, rescued_rows=rows.num_rows - rows.column(RESCUED_DATA).null_count)

            pool = ThreadPoolExecutor(max_workers=_STAGING_THREADS)
            try:
                entries = list(pool.map(stage_file, claims))
            finally:
                pool.shutdown(cancel_futures=True)  # a file that fails the batch stops the others
        # Arrow's allocator keeps freed pages for reuse; the engine's steps that follow need them.
        pa.default_memory_pool().release_unused()
        return entries

    def _account(self, batch_id: str, entries: list[LedgerEntry], new_columns: list[str]) -> None:
        report = self.report
        report.batches.append(batch_id)
        report.new_columns += [c for c in new_columns if c not in report.new_columns]
        self._account_files(entries)
        rows = sum(e.rows for e in entries)
        self.log.info(
            "%s: batch %s appended %d rows from %d file(s)", self.target, batch_id, rows, len(entries)
        )

    def _account_files(self, entries: list[LedgerEntry]) -> None:
        report = self.report
        for entry in entries:
            uri = entry.claim.file.uri
            if entry.outcome == REJECTED:
                report.files_rejected[uri] = entry.message or ""
                self.log.warning("%s: rejected %s: %s", self.target, uri, entry.message)
            elif entry.outcome == EMPTY:
                report.files_empty.append(uri)
                self.log.warning("%s: %s has no data rows (%s)", self.target, uri, entry.message)
            else:
                report.files_ingested += 1
                report.rows_ingested += entry.rows
                report.rows_rescued += entry.rescued_rows

    def _release_unless_written(self, batch_id: str, claims: list[Claim], error: BaseException) -> None:
        """A batch that failed before its bronze commit frees its files for the next run. If even
        that fails (the engine is gone), the batch stays open and the next run completes it."""
        try:
            if not self._bronze_counts(batch_id):
                self.ledger.release(batch_id, claims, f"{type(error).__name__}: {str(error)[:500]}")
        except Exception:  # the original error is the one to report
            self.log.exception("%s: could not release batch %s", self.target, batch_id)

    def _bronze_counts(self, batch_id: str) -> dict[str, tuple[int, int]]:
        """Rows and rescued rows per file of a batch in bronze (none if the batch is not there)."""
        if not self.tables.exists(self.target):
            return {}
        rows = (
            self.tables.read(self.target)
            .where(F.col(BATCH_ID) == F.lit(batch_id))
            .groupBy(SOURCE_FILE)
            .agg(F.count(F.lit(1)).alias("rows"), F.count(RESCUED_DATA).alias("rescued"))
            .collect()
        )
        return {row[SOURCE_FILE]: (row["rows"], row["rescued"]) for row in rows}


def _batches(claims: list[Claim], source: FileSource) -> list[list[Claim]]:
    batches: list[list[Claim]] = []
    current: list[Claim] = []
    current_bytes = 0
    for claim in claims:
        if current and (
            len(current) >= source.max_files_per_batch
            or current_bytes + claim.file.size > source.max_bytes_per_batch
        ):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(claim)
        current_bytes += claim.file.size
    if current:
        batches.append(current)
    return batches


def _entry_from_counts(
    claim: Claim, counts: dict[str, tuple[int, int]], parsed: LedgerEntry | None = None
) -> LedgerEntry:
    rows, rescued = counts.get(claim.file.uri, (0, 0))
    content_hash = parsed.content_hash if parsed is not None else None
    return LedgerEntry(claim, INGESTED, rows=rows, rescued_rows=rescued, content_hash=content_hash)


def _entry_without_rows(claim: Claim, aws: AwsConfig) -> LedgerEntry:
    """The outcome of a file of a recovered batch that has no rows in bronze, read again: empty
    or rejected for its bytes; gone, or holding rows now (it changed after it was read), is
    rejected without its fingerprint, so that it is tried again when listed."""
    header = read_headers([claim.file], aws)[claim.file.uri]
    # With no column plan for it, a file holding rows reads as one whose header changed.
    return _parse_file(claim, header, ColumnPlan([], [], {}), aws)[0]


def _parse_file(
    claim: Claim, header: Header | None, plan: ColumnPlan, aws: AwsConfig
) -> tuple[LedgerEntry, ParsedCsv | None]:
    """The file's entry in the ledger, and its parsed rows (None for an empty or rejected file)."""
    landed = claim.file
    if header is None or isinstance(header, VanishedFileError):
        return _unread(claim, "the file vanished before it was read"), None
    if isinstance(header, UnreadableFileError):
        return LedgerEntry(claim, REJECTED, message=str(header)), None
    if not header:
        return LedgerEntry(claim, EMPTY, message="empty file"), None
    try:
        data = files.read_bytes(landed.uri, aws)
        parsed = parse_csv(data)
    except UnreadableFileError as error:
        return LedgerEntry(claim, REJECTED, message=str(error)), None
    except FileNotFoundError:
        return _unread(claim, "the file vanished before it was read"), None
    digest = files.content_hash(data)
    if parsed.table.num_rows == 0:
        return LedgerEntry(claim, EMPTY, message="header only", content_hash=digest), None
    mapping = plan.by_file.get(landed.uri)
    if mapping is None or set(mapping) != set(parsed.columns):
        # The file changed between the reading of its header and now: its next attempt reads it anew.
        return _unread(claim, "the header changed while the batch was read"), None
    return LedgerEntry(claim, INGESTED, rows=parsed.table.num_rows, content_hash=digest), parsed


def _unread(claim: Claim, why: str) -> LedgerEntry:
    """A rejection for what happened to the file, not for its content: recorded without the
    listed version's fingerprint, so that the file is tried again whenever it is listed, even
    with the same bytes (an S3 object deleted, then put again: the same ETag)."""
    return LedgerEntry(replace(claim, file=replace(claim.file, fingerprint="")), REJECTED, message=why)
