"""The storage seam: every read, write, MERGE and Delta-log lookup of the lake's tables.

Tables are addressed as ``layer.table``. Spark does the data work on every engine; what the
engine cannot do is done by a *log backend*, picked by what the engine can do:

- ``DeltaRsLog`` (the embedded engine, Sail): ``deltalake`` (delta-rs) reads the log and
  commits batches with application transaction ids, which Sail ignores;
- ``DeltaSparkLog`` (classic Spark with delta-spark, a Databricks cluster): delta-spark's
  ``DeltaTable`` API, and the Delta writer's own ``txnAppId`` / ``txnVersion``;
- ``SparkSqlLog`` (any other engine, Databricks through Spark Connect): ``DESCRIBE HISTORY``
  and the same writer options.

SQL text is built here only, from table paths (checked when the settings are read) and
column names (always quoted); values from data travel as DataFrames, never as SQL text.

Maintenance (compaction, Z-order, VACUUM, expiring rows) goes through the same backends:
delta-rs' ``optimize`` and ``vacuum`` on the embedded engine, which has no ``OPTIMIZE`` or
``VACUUM``; the SQL commands on Spark with Delta and on Databricks.

Concurrency: two writers that commit to a table at the same moment are detected by Delta's
optimistic concurrency; the loser raises ``ConcurrentWriteError`` and commits nothing.
Tables are created empty first, so that two first writes conflict like any others; ``create``
instead makes the first commit hold the rows, and fails if the table exists.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, NullType, StructField, StructType

from lakehouse_dagster.joins import matching
from lakehouse_dagster.lake.adopt import NULL_PARTITION
from lakehouse_dagster.lake.files import delete_tree, list_parquet, parquet_writer
from lakehouse_dagster.lake.layout import LakeLayout, TableName, join_uri, quote_identifier, sql_literal

#: How engines say a schema does not exist (Databricks, Spark, the embedded engine).
_NO_SCHEMA = re.compile(
    r"SCHEMA_NOT_FOUND|NoSuch(Database|Namespace)|Database not found|Database '.*' not found"
)


class TableNotFoundError(LookupError):
    def __init__(self, name: TableName, uri: str) -> None:
        super().__init__(f"table {name} does not exist yet at {uri}; materialise it first")
        self.name = name
        self.uri = uri


class SchemaMergeError(ValueError):
    pass


def _clash_in_case(staged_uri: str) -> bool:
    """Whether a staged file's own column names differ only in case."""
    for uri in list_parquet(staged_uri):
        names = [name.lower() for name in pq.read_schema(uri).names]
        if len(set(names)) != len(names):
            return True
    return False


class ConcurrentWriteError(RuntimeError):
    """Another writer committed to the table at the same moment; this write committed nothing."""


_CONFLICT = re.compile(
    r"Failed to commit transaction|Concurrent\w*(Exception|failed)|ProtocolChanged|MetadataChanged"
    r"|DELTA_CONCURRENT",
    re.IGNORECASE,
)
#: delta-rs refusing a schema merge that would hold two names equal but for their case.
_CASE_CLASH = re.compile(r"Duplicate field name \(case-insensitive\)", re.IGNORECASE)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class Upsert:
    """How ``DeltaTables.merge`` applies a source to a table.

    Rows match on ``on``: equal values (never null), and equal or both null in the
    ``null_safe`` columns among them. A matched row whose source ``delete_flag`` is true is
    deleted; otherwise it is updated when one of ``columns`` differs. An unmatched row is
    inserted unless its ``delete_flag`` is true.
    """

    on: tuple[str, ...]
    columns: tuple[str, ...]
    delete_flag: str | None = None
    null_safe: tuple[str, ...] = ()
    #: SQL over the target (alias ``t``) that every row the source may match satisfies, added to
    #: the match condition: on a partition column, the MERGE reads only those partitions.
    target_filter: str | None = None


@dataclass(frozen=True)
class DateWindow:
    """Rows whose ``column`` is in [start, end): the rows a partition range replaces."""

    column: str
    start: date
    end: date

    def predicate(self) -> str:
        column = quote_identifier(self.column)
        return f"{column} >= {sql_literal(self.start)} AND {column} < {sql_literal(self.end)}"

    def condition(self):
        column = F.col(quote_identifier(self.column))
        return (column >= F.lit(self.start)) & (column < F.lit(self.end))


@dataclass(frozen=True)
class TimeSince:
    """Rows whose timestamp ``column`` is at or after ``start``, in the daily partitions of
    ``date_column`` from ``start``'s day on: the recent rows a real-time table replaces."""

    column: str
    date_column: str
    start: datetime

    def predicate(self) -> str:
        column, day = quote_identifier(self.column), quote_identifier(self.date_column)
        return (
            f"{day} >= {sql_literal(self.start.date())} AND "
            f"{column} >= TIMESTAMP'{self.start.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        )

    def condition(self):
        return (F.col(quote_identifier(self.date_column)) >= F.lit(self.start.date())) & (
            F.col(quote_identifier(self.column)) >= F.lit(self.start)
        )


@dataclass(frozen=True)
class TableFiles:
    """The data files of a table's current version: how many, and their bytes."""

    files: int
    bytes: int


#: What a literal compared in a row-expiry predicate may hold (table names, run ids).
_SAFE_LITERAL = re.compile(r"^[A-Za-z0-9_.:-]*$")


class LogBackend(Protocol):
    """What the seam asks of the Delta log, beyond Spark's reads and writes."""

    def exists(self, uri: str) -> bool: ...
    def version(self, uri: str) -> int | None: ...
    def history(self, uri: str, limit: int) -> list[dict[str, Any]]: ...
    def append_staged(self, uri: str, staged_uri: str, token: str, partition_by: Sequence[str]) -> bool: ...
    def create_staged(
        self, uri: str, staged_uri: str, schema: StructType | None = None, partition_by: Sequence[str] = ()
    ) -> bool: ...
    def takes_staged_partitions(self, uri: str, column: str) -> bool: ...
    def replace_staged(self, uri: str, staged_uri: str, window: DateWindow) -> bool: ...
    def files(self, uri: str) -> TableFiles: ...
    def optimize(self, uri: str, zorder_by: Sequence[str]) -> dict[str, Any]: ...
    def vacuum(self, uri: str, retention_hours: int) -> int | None: ...
    def add_columns(self, uri: str, fields: Sequence[StructField]) -> None: ...


class DeltaTables:
    """The lake's tables, addressed as ``layer.table``."""

    def __init__(self, spark: SparkSession, layout: LakeLayout, log: LogBackend | None = None) -> None:
        self.spark = spark
        self.layout = layout
        self.log = log if log is not None else log_backend_for(spark)

    # Names and reads -------------------------------------------------------------------------

    def uri(self, name: TableName) -> str:
        return self.layout.table_uri(name)

    def sql_ref(self, name: TableName) -> str:
        """How SQL names the table: by path, which survives engine restarts."""
        return f"delta.{quote_identifier(self.uri(name))}"

    def exists(self, name: TableName) -> bool:
        return self.log.exists(self.uri(name))

    def read(self, name: TableName, *, pinned: bool = False) -> DataFrame:
        """The table; each action on it reads its latest version then. ``pinned``: its version
        now, whatever is committed before the actions run (a frame read more than once)."""
        if not self.exists(name):
            raise TableNotFoundError(name, self.uri(name))
        reader = self.spark.read.format("delta")
        if pinned:
            reader = reader.option("versionAsOf", str(self.version(name)))
        return reader.load(self.uri(name))

    def read_or_empty(self, name: TableName, schema: str) -> DataFrame:
        return self.read(name) if self.exists(name) else self.spark.createDataFrame([], schema)

    def version(self, name: TableName) -> int | None:
        """The latest committed version, or None before the first write."""
        return self.log.version(self.uri(name))

    def columns(self, name: TableName) -> list[ColumnInfo]:
        return [
            ColumnInfo(field.name, field.dataType.simpleString(), field.nullable)
            for field in self.read(name).schema.fields
        ]

    def lookup(self, name: TableName, column: str, values: Iterable[str]) -> DataFrame:
        """The rows whose ``column`` is one of ``values`` (a join, not a filter of literals)."""
        wanted = self.spark.createDataFrame([(value,) for value in dict.fromkeys(values)], "value STRING")
        return matching(self.read(name), wanted.withColumnRenamed("value", column), [column])

    def commit_metrics(self, name: TableName, since_version: int | None) -> dict[str, Any]:
        """Rows inserted, updated and deleted by the commit after ``since_version`` (none if none)."""
        if self.version(name) == since_version:
            return {"rows_inserted": 0, "rows_updated": 0, "rows_deleted": 0}
        commit = self.log.history(self.uri(name), 1)[0]
        metrics = commit.get("operationMetrics") or {}
        return {
            "operation": commit.get("operation"),
            "rows_inserted": int(
                metrics.get(
                    "numTargetRowsInserted", metrics.get("numOutputRows", metrics.get("num_added_rows"))
                )
                or 0
            ),
            "rows_updated": int(metrics.get("numTargetRowsUpdated", 0) or 0),
            "rows_deleted": int(metrics.get("numTargetRowsDeleted", 0) or 0),
        }

    def rows_written(self, name: TableName, since_version: int | None) -> int:
        """Rows the commits after ``since_version`` wrote: appended or replaced (the output rows),
        inserted + updated + deleted by a MERGE, deleted by a DELETE; none for maintenance."""
        current = self.version(name)
        if current is None or current == since_version:
            return 0
        start = -1 if since_version is None else since_version
        commits = self.log.history(self.uri(name), current - start)
        return sum(_rows_of(commit) for commit in commits if commit.get("version", current) > start)

    # Writes ----------------------------------------------------------------------------------

    def append(
        self,
        name: TableName,
        frame: DataFrame,
        *,
        merge_schema: bool = False,
        partition_by: Sequence[str] = (),
    ) -> None:
        """Add rows in one commit. Appends never conflict with each other. ``partition_by``
        applies when the append creates the table."""
        self._create_if_missing(name, frame, partition_by)
        writer = frame.write.format("delta").mode("append")
        if merge_schema:
            self._check_schema_can_grow(name, frame)
            writer = writer.option("mergeSchema", "true")
        self._commit(name, lambda: writer.save(self.uri(name)))

    def append_staged(
        self, name: TableName, staged_uri: str, token: str, *, partition_by: Sequence[str] = ()
    ) -> bool:
        """Append the Parquet files under ``staged_uri`` in one commit that carries ``token``,
        unless a commit with ``token`` exists already. Returns whether this call committed.

        Two writers of the same token at the same moment: one commits, the other finds the
        token and commits nothing. This is what makes a retried or recovered batch land once.
        """
        created = not self.exists(name)
        try:
            committed = self._commit(
                name, lambda: self.log.append_staged(self.uri(name), staged_uri, token, partition_by)
            )
        except Exception as error:
            # The batch's new columns were planned against the table's: only another writer can
            # have added one of them in another case since (unless the batch's own columns clash).
            if not _CASE_CLASH.search(str(error)) or _clash_in_case(staged_uri):
                raise
            raise ConcurrentWriteError(
                f"{name}: another writer added a column whose name differs from one of this batch's "
                f"new columns only in case, so this write committed nothing; run it again "
                f"({str(error).splitlines()[0][:200]})"
            ) from error
        if created:
            self.register(name)  # the log backend created it
        return committed

    def create(self, name: TableName, frame: DataFrame, *, partition_by: Sequence[str] = ()) -> None:
        """Create the table with ``frame``'s rows in its first commit. If the table exists, or
        another writer creates it at the same moment, nothing is written and this raises
        ``ConcurrentWriteError``: of two creators, one wins (two appends would both land)."""
        staging = join_uri(self.layout.staging_root(name), f"create-{uuid.uuid4().hex}")
        try:
            _stage(frame, staging, partition_by)
            created = self._commit(
                name, lambda: self.log.create_staged(self.uri(name), staging, frame.schema, partition_by)
            )
        finally:
            delete_tree(staging)
        if not created:
            raise ConcurrentWriteError(
                f"{name}: the table exists (another writer created it first), so this write "
                "committed nothing; run it again"
            )
        self.register(name)

    def overwrite(self, name: TableName, frame: DataFrame, *, partition_by: Sequence[str] = ()) -> None:
        """Replace the whole table, schema included, in one commit."""
        self._create_if_missing(name, frame, partition_by)
        writer = frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        self._commit(name, lambda: writer.save(self.uri(name)))

    def replace_window(
        self,
        name: TableName,
        frame: DataFrame,
        window: DateWindow | TimeSince,
        *,
        partition_by: Sequence[str] = (),
    ) -> None:
        """Replace the rows of ``window`` (a range of daily partitions, or the rows since a
        moment) in one commit. Columns of ``frame`` the table lacks are added first; the table's
        columns ``frame`` lacks are written null."""
        self._create_if_missing(name, frame, partition_by)
        frame = self.aligned(name, frame)
        staged = isinstance(window, DateWindow) and self.log.takes_staged_partitions(
            self.uri(name), window.column
        )
        if staged and self._replace_staged(name, frame, window):
            return
        writer = frame.write.format("delta").mode("overwrite").option("replaceWhere", window.predicate())
        self._commit(name, lambda: writer.save(self.uri(name)))

    def _replace_staged(self, name: TableName, frame: DataFrame, window: DateWindow) -> bool:
        """The window staged as Parquet, a folder per day, then committed as it is: for a large
        window the engine's partitioned Delta writer holds far more memory than its partitioned
        Parquet writer (25M rows: 3.6 against 2.2 GiB)."""
        staging = join_uri(self.layout.staging_root(name), f"replace-{uuid.uuid4().hex}")
        try:
            _stage(frame, staging, (window.column,))
            return self._commit(name, lambda: self.log.replace_staged(self.uri(name), staging, window))
        finally:
            delete_tree(staging)

    def merge(self, name: TableName, source: DataFrame, upsert: Upsert) -> None:
        """MERGE ``source`` into the table (see ``Upsert``). A merge that changes nothing commits nothing."""
        flag = upsert.delete_flag
        self._create_if_missing(name, source.drop(flag) if flag else source)
        on = _matching(upsert.on, upsert.null_safe)
        if upsert.target_filter is not None:
            on = f"{on} AND ({upsert.target_filter})"
        columns = [quote_identifier(c) for c in upsert.columns]
        differs = "NOT (" + " AND ".join(f"t.{c} <=> s.{c}" for c in columns) + ")"
        assignments = ", ".join(f"t.{c} = s.{c}" for c in columns)
        insert = f"({', '.join(columns)}) VALUES ({', '.join(f's.{c}' for c in columns)})"
        deleted = f"s.{quote_identifier(flag)}" if flag else "FALSE"
        statement = (
            f"MERGE INTO {{target}} AS t USING {{source}} AS s ON {on} "
            f"WHEN MATCHED AND {deleted} THEN DELETE "
            f"WHEN MATCHED AND {differs} THEN UPDATE SET {assignments} "
            f"WHEN NOT MATCHED AND NOT {deleted} THEN INSERT {insert}"
        )
        # The source is computed once into staging: a MERGE over a lazy plan (windows, joins)
        # evaluates it more than once (three times slower on the engine here).
        with self.materialized(name, source) as staged:
            self._merge_sql(name, staged, statement)

    @contextmanager
    def materialized(self, name: TableName, frame: DataFrame) -> Iterator[DataFrame]:
        """``frame`` computed once into the staging area of ``name``, read back; deleted on exit.
        For a result that later steps read more than once: the engine does not reuse a subplan."""
        staging = join_uri(self.layout.staging_root(name), f"stage-{uuid.uuid4().hex}")
        try:
            _stage(frame, staging)
            yield self.spark.read.parquet(staging)
        finally:
            delete_tree(staging)

    def insert_missing(self, name: TableName, frame: DataFrame, identity: Sequence[str]) -> None:
        """Insert the rows whose ``identity`` (never null) is not in the table yet (an insert-only
        MERGE). Two writers inserting the same identity at the same moment: one wins, the other
        raises ``ConcurrentWriteError``."""
        self._create_if_missing(name, frame)
        frame = self.aligned(name, frame)
        on = _matching(identity)
        self._merge_sql(
            name,
            frame,
            f"MERGE INTO {{target}} AS t USING {{source}} AS s ON {on} WHEN NOT MATCHED THEN INSERT *",
        )

    def add_new_columns(
        self, name: TableName, frame: DataFrame, table_fields: Sequence[StructField] | None = None
    ) -> list[str]:
        """Add the columns of ``frame`` the table lacks (nullable; older rows read null): a
        ``replaceWhere`` or an ``INSERT *`` would silently drop them. Returns their names. A
        column of no type (an uncast null literal) is refused: Delta cannot store it.
        ``table_fields``: the table's columns, when the caller has read them."""
        fields = table_fields if table_fields is not None else self.read(name).schema.fields
        have = {field.name.lower() for field in fields}
        new = [field for field in frame.schema.fields if field.name.lower() not in have]
        untyped = [field.name for field in new if _holds_null_type(field.dataType)]
        if untyped:
            raise SchemaMergeError(
                f"{name}: new column(s) {', '.join(untyped)} have no type (a null literal): cast them "
                "to the type they will hold"
            )
        if not new:
            return []
        try:
            self.log.add_columns(self.uri(name), new)
        except Exception as error:
            # Another writer adding the same column at the same moment is the only benign case.
            have = {field.name.lower() for field in self.read(name).schema.fields}
            if any(field.name.lower() not in have for field in new):
                raise SchemaMergeError(
                    f"{name}: could not add column(s) {', '.join(f.name for f in new)}: {error}"
                ) from error
        return [field.name for field in new]

    def aligned(self, name: TableName, frame: DataFrame) -> DataFrame:
        """``frame`` with the columns the table lacks added to the table, and the table's columns
        it lacks added as typed nulls (a column added by a later release, then rolled back). A
        required column the frame lacks is refused before the table changes."""
        fields = self.read(name).schema.fields
        present = {column.lower() for column in frame.columns}
        missing = [field for field in fields if field.name.lower() not in present]
        required = [field.name for field in missing if not field.nullable]
        if required:
            raise SchemaMergeError(
                f"{name}: the table's column(s) {', '.join(required)} may not be null, and the rows "
                "written lack them: write them, or rebuild the table without them"
            )
        self.add_new_columns(name, frame, fields)
        for field in missing:
            frame = frame.withColumn(field.name, F.lit(None).cast(field.dataType))
        return frame

    def delete_matching(self, name: TableName, keys: DataFrame, on: Sequence[str]) -> None:
        """Delete the rows whose ``on`` columns (never null) match a row of ``keys`` (a MERGE that
        only deletes)."""
        condition = _matching(on)
        self._merge_sql(
            name,
            keys,
            f"MERGE INTO {{target}} AS t USING {{source}} AS s ON {condition} WHEN MATCHED THEN DELETE",
        )

    # Maintenance -----------------------------------------------------------------------------

    def files(self, name: TableName) -> TableFiles:
        """The data files of the current version (what a reader opens)."""
        if not self.exists(name):
            raise TableNotFoundError(name, self.uri(name))
        return self.log.files(self.uri(name))

    def optimize(self, name: TableName, zorder_by: Sequence[str] = ()) -> dict[str, Any]:
        """Compact small files into larger ones in one commit that changes no data (readers of any
        version see the same rows); with ``zorder_by``, also cluster rows by those columns.
        Returns the files added and removed."""
        if zorder_by:
            known = {column.name for column in self.columns(name)}
            missing = [column for column in zorder_by if column not in known]
            if missing:
                raise ValueError(
                    f"{name}: cannot Z-order by {', '.join(map(repr, missing))}: no such column "
                    f"(columns: {', '.join(sorted(known))})"
                )
        return self._commit(name, lambda: self.log.optimize(self.uri(name), tuple(zorder_by)))

    def vacuum(self, name: TableName, retention_hours: int) -> int | None:
        """Delete the files no version younger than ``retention_hours`` needs (time travel inside
        the window keeps working), and stray files older than the window. Returns how many
        files were deleted, or None where the engine does not say."""
        return self._commit(name, lambda: self.log.vacuum(self.uri(name), int(retention_hours)))

    def delete_older_than(
        self, name: TableName, column: str, cutoff: datetime, where: Mapping[str, str] | None = None
    ) -> int:
        """Delete the rows whose ``column`` is before ``cutoff`` (and whose ``where`` columns hold the
        given values) in one commit. Returns the rows deleted."""
        if not self.exists(name):
            return 0
        instant = cutoff.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        conditions = [f"{quote_identifier(column)} < TIMESTAMP'{instant}+00:00'"]
        for key, value in (where or {}).items():
            if not _SAFE_LITERAL.match(value):
                raise ValueError(f"{name}: refusing to expire rows by {key}={value!r}")
            conditions.append(f"{quote_identifier(key)} = '{value}'")
        before = self.version(name)
        statement = f"DELETE FROM {self.sql_ref(name)} WHERE {' AND '.join(conditions)}"
        self._commit(name, lambda: self.spark.sql(statement).collect())
        if self.version(name) == before:
            return 0
        metrics = self.log.history(self.uri(name), 1)[0].get("operationMetrics") or {}
        return int(metrics.get("numDeletedRows", metrics.get("num_deleted_rows", 0)) or 0)

    def register(self, name: TableName) -> None:
        """With a catalog configured (Unity Catalog in production), register the table there as an
        external table over its path. Locally tables are addressed by path only: the embedded
        engine's catalog does not outlive it.

        The schema is created only when it is missing: in Unity Catalog Terraform creates the
        layers' schemas, and the pipeline's principal needs no right to create schemas."""
        if not self.layout.catalog:
            return
        parts = [*self.layout.catalog.split("."), name.layer, name.table]
        qualified = ".".join(quote_identifier(p) for p in parts)
        schema = ".".join(quote_identifier(p) for p in parts[:-1])
        create = f"CREATE TABLE IF NOT EXISTS {qualified} USING DELTA LOCATION '{self.uri(name)}'"
        try:
            self.spark.sql(create)
        except Exception as error:
            if not _NO_SCHEMA.search(str(error)):
                raise
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            self.spark.sql(create)

    # Internals ---------------------------------------------------------------------------------

    def _merge_sql(self, name: TableName, source: DataFrame, statement: str) -> None:
        view = f"merge_source_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        try:
            self._commit(
                name,
                lambda: self.spark.sql(statement.format(target=self.sql_ref(name), source=view)).collect(),
            )
        finally:
            self.spark.catalog.dropTempView(view)

    def _create_if_missing(self, name: TableName, frame: DataFrame, partition_by: Sequence[str] = ()) -> None:
        """Create the table empty, with ``frame``'s schema. Two creators at once end with one
        empty table; the writes that follow then conflict like any others."""
        if self.exists(name):
            return
        writer = frame.limit(0).write.format("delta").mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        try:
            writer.save(self.uri(name))
        except Exception:
            if not self.exists(name):
                raise
        self.register(name)

    def _commit(self, name: TableName, write):
        try:
            return write()
        except Exception as error:
            if _CONFLICT.search(str(error)):
                raise ConcurrentWriteError(
                    f"{name}: another writer committed to the table at the same moment, so this write "
                    f"committed nothing; run it again ({str(error).splitlines()[0][:200]})"
                ) from error
            raise

    def _check_schema_can_grow(self, name: TableName, frame: DataFrame) -> None:
        """Sail 0.7.2 silently drops new columns on a mergeSchema append to a table that has a
        non-nullable column. Refuse such a write rather than lose the columns' data."""
        fields = self.read(name).schema.fields
        new_columns = sorted(set(frame.columns) - {field.name for field in fields})
        required = [field.name for field in fields if not field.nullable]
        if new_columns and required:
            raise SchemaMergeError(
                f"{name}: cannot add column(s) {', '.join(new_columns)} because the table has non-nullable "
                f"column(s) {', '.join(required)}; the engine would drop the new columns' data"
            )


#: Commits that rearrange files without changing rows.
_MAINTENANCE_OPERATIONS = {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"}


def _rows_of(commit: Mapping[str, Any]) -> int:
    """Rows one commit wrote, from its operation metrics (Spark, Databricks and delta-rs names)."""
    operation = str(commit.get("operation") or "")
    metrics = commit.get("operationMetrics") or {}

    def metric(*names: str) -> int:
        return sum(int(metrics.get(name) or 0) for name in names)

    if operation in _MAINTENANCE_OPERATIONS:
        return 0
    if operation == "MERGE":
        return metric("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted") or metric(
            "num_target_rows_inserted", "num_target_rows_updated", "num_target_rows_deleted"
        )
    if operation == "DELETE":
        return metric("numDeletedRows", "num_deleted_rows")
    return metric("numOutputRows", "num_added_rows")


# Log backends ----------------------------------------------------------------------------------


class DeltaRsLog:
    """The Delta log through ``deltalake`` (delta-rs): for the embedded engine, which has no
    ``DESCRIBE HISTORY`` and ignores application transaction ids."""

    def exists(self, uri: str) -> bool:
        import deltalake

        return deltalake.DeltaTable.is_deltatable(uri)

    def version(self, uri: str) -> int | None:
        import deltalake

        return deltalake.DeltaTable(uri).version() if self.exists(uri) else None

    def add_columns(self, uri: str, fields: Sequence[StructField]) -> None:
        _delta_rs_add_columns(uri, fields)

    def history(self, uri: str, limit: int) -> list[dict[str, Any]]:
        import deltalake

        return deltalake.DeltaTable(uri).history(limit)

    def append_staged(self, uri: str, staged_uri: str, token: str, partition_by: Sequence[str]) -> bool:
        import deltalake
        import pyarrow.dataset as ds
        from deltalake import CommitProperties, Transaction
        from deltalake.exceptions import CommitFailedError

        staged = ds.dataset(staged_uri, format="parquet")
        if not self.exists(uri):
            try:
                deltalake.DeltaTable.create(
                    uri,
                    schema=_nullable(staged.schema),
                    partition_by=list(partition_by) or None,
                    mode="error",
                )
            except Exception:
                if not self.exists(uri):
                    raise
        if not partition_by:
            adopted = self._adopt_staged(uri, staged_uri, token)
            if adopted is not None:
                return adopted
        for _attempt in range(20):
            # The commit is made against this snapshot: a concurrent commit of the same token
            # makes it fail, and the next attempt then finds the token.
            table = deltalake.DeltaTable(uri)
            if table.transaction_version(token) is not None:
                return False
            try:
                deltalake.write_deltalake(
                    table,
                    staged.scanner().to_reader(),
                    mode="append",
                    schema_mode="merge",
                    partition_by=list(partition_by) or None,
                    commit_properties=CommitProperties(app_transactions=[Transaction(token, 1)]),
                )
                return True
            except CommitFailedError:
                continue
        raise RuntimeError(f"{uri}: could not commit batch {token} after 20 concurrent attempts")

    def create_staged(
        self, uri: str, staged_uri: str, schema: StructType | None = None, partition_by: Sequence[str] = ()
    ) -> bool:
        """The staged files moved into a new table, committed as its version 0 without retries:
        a version 0 that exists already (even one committed a moment ago) fails the commit.
        Partitioned, each file's partition values are those of its staged folder."""
        import deltalake
        import pyarrow as pa
        from deltalake import CommitProperties
        from deltalake.exceptions import CommitFailedError, DeltaError
        from deltalake.transaction import create_table_with_add_actions
        from pyspark.sql.pandas.types import to_arrow_type

        from lakehouse_dagster.lake import adopt

        if self.exists(uri):
            return False
        staged = adopt.staged_files(staged_uri, partition_by)
        columns = staged[0].metadata.schema.to_arrow_schema()
        for column in partition_by:
            columns = columns.append(pa.field(column, to_arrow_type(schema[column].dataType, timezone="UTC")))
        staged = [file for file in staged if file.metadata.num_rows]
        moved = adopt.MovedFiles(uri, staged)
        try:
            create_table_with_add_actions(
                uri,
                deltalake.Schema.from_arrow(columns),
                moved.add_actions(),
                mode="error",
                partition_by=list(partition_by) or None,
                commit_properties=CommitProperties(max_commit_retries=0, custom_metadata=moved.metrics()),
            )
            return True
        except DeltaError as error:  # CommitFailedError among them
            moved.delete()  # never committed: another writer created the table
            if isinstance(error, CommitFailedError) or self.exists(uri):
                return False
            raise

    def takes_staged_partitions(self, uri: str, column: str) -> bool:
        import deltalake

        from lakehouse_dagster.lake import adopt

        return self.exists(uri) and adopt.plain_table(
            deltalake.DeltaTable(uri), (column,), nulls_checked=True
        )

    def replace_staged(self, uri: str, staged_uri: str, window: DateWindow) -> bool:
        """The window's partitions replaced by the staged files (``column=value`` folders), moved
        in as they are, in one commit. Any commit since this one's snapshot fails it (no
        retries): the caller's unit then runs again, as after a conflicting ``replaceWhere``.
        Rows outside the window are refused (as Databricks' ``replaceWhere`` refuses them). False,
        committing nothing, if the files' columns are not the table's, or if their footers do
        not show the table's required columns free of nulls."""
        import deltalake
        import pyarrow as pa
        from deltalake import CommitProperties
        from deltalake.exceptions import CommitFailedError

        from lakehouse_dagster.lake import adopt

        table = deltalake.DeltaTable(uri)
        columns = pa.schema(table.schema().to_arrow())
        columns = columns.remove(columns.get_field_index(window.column))
        required = [field.name for field in table.schema().fields if not field.nullable]
        required = [name for name in required if name != window.column]  # never null: checked below
        staged = [file for file in adopt.staged_files(staged_uri, (window.column,)) if file.metadata.num_rows]
        first, end = window.start.isoformat(), window.end.isoformat()
        for file in staged:
            day = file.partition_values[window.column]
            if day is None or not first <= day < end:
                raise ValueError(
                    f"{uri}: rows with {window.column} = {day} are outside the window being replaced "
                    f"({first} to {end}, end excluded); nothing was written"
                )
        if not all(
            adopt.adoptable(columns, file.metadata.schema.to_arrow_schema())
            and adopt.holds_no_nulls(file.metadata, required)
            for file in staged
        ):
            return False
        moved = adopt.MovedFiles(uri, staged)
        try:
            table.create_write_transaction(
                moved.add_actions(),
                mode="overwrite",
                schema=table.schema(),
                partition_by=[window.column],
                partition_filters=[(window.column, ">=", first), (window.column, "<", end)],
                commit_properties=CommitProperties(max_commit_retries=0, custom_metadata=moved.metrics()),
            )
        except CommitFailedError:
            moved.delete()  # never committed
            raise
        return True

    def _adopt_staged(self, uri: str, staged_uri: str, token: str) -> bool | None:
        """Commit the staged files as they are (``lake/adopt.py``); None if their columns are
        not the table's (a new column: the caller rewrites them with a schema merge), or if the
        table is partitioned or validates what it takes (the caller's write does)."""
        import deltalake
        import pyarrow as pa
        from deltalake import CommitProperties, Transaction
        from deltalake.exceptions import CommitFailedError

        from lakehouse_dagster.lake import adopt

        staged = adopt.staged_files(staged_uri)
        table = deltalake.DeltaTable(uri)
        if (
            not staged
            or not adopt.plain_table(table)
            or not adopt.adoptable(
                pa.schema(table.schema().to_arrow()), staged[0].metadata.schema.to_arrow_schema()
            )
        ):
            return None
        if table.transaction_version(token) is not None:
            return False
        moved = adopt.MovedFiles(uri, staged)
        actions = moved.add_actions()
        for _attempt in range(20):
            table = deltalake.DeltaTable(uri)
            if table.transaction_version(token) is not None:
                moved.delete()  # never committed: another writer committed this batch
                return False
            try:
                table.create_write_transaction(
                    actions,
                    mode="append",
                    schema=table.schema(),
                    commit_properties=CommitProperties(
                        app_transactions=[Transaction(token, 1)], custom_metadata=moved.metrics()
                    ),
                )
                return True
            except CommitFailedError:
                continue
        raise RuntimeError(f"{uri}: could not commit batch {token} after 20 concurrent attempts")

    def files(self, uri: str) -> TableFiles:
        import deltalake
        import pyarrow as pa
        import pyarrow.compute as pc

        actions = pa.table(deltalake.DeltaTable(uri).get_add_actions(flatten=True))
        size = pc.sum(actions.column("size_bytes")).as_py() if actions.num_rows else 0
        return TableFiles(actions.num_rows, int(size or 0))

    def optimize(self, uri: str, zorder_by: Sequence[str]) -> dict[str, Any]:
        import deltalake

        table = deltalake.DeltaTable(uri)
        metrics = table.optimize.z_order(list(zorder_by)) if zorder_by else table.optimize.compact()
        return {"files_added": metrics["numFilesAdded"], "files_removed": metrics["numFilesRemoved"]}

    def vacuum(self, uri: str, retention_hours: int) -> int | None:
        import deltalake

        # full: also stray files (of writes that never committed) older than the window, as
        # Databricks' VACUUM does. The table's own retention setting is enforced.
        deleted = deltalake.DeltaTable(uri).vacuum(
            retention_hours=retention_hours, dry_run=False, enforce_retention_duration=True, full=True
        )
        return len(deleted)


def _holds_null_type(data_type: DataType) -> bool:
    """Whether a type is, or nests, the type of an uncast null literal (Delta has none)."""
    if isinstance(data_type, NullType):
        return True
    if isinstance(data_type, StructType):
        return any(_holds_null_type(field.dataType) for field in data_type.fields)
    if isinstance(data_type, ArrayType):
        return _holds_null_type(data_type.elementType)
    if isinstance(data_type, MapType):
        return _holds_null_type(data_type.keyType) or _holds_null_type(data_type.valueType)
    return False


def sql_type(data_type: DataType) -> str:
    """The Spark SQL of a type, nested field names quoted (``simpleString`` leaves them bare)."""
    if isinstance(data_type, StructType):
        return (
            "struct<"
            + ",".join(f"{quote_identifier(f.name)}:{sql_type(f.dataType)}" for f in data_type.fields)
            + ">"
        )
    if isinstance(data_type, ArrayType):
        return f"array<{sql_type(data_type.elementType)}>"
    if isinstance(data_type, MapType):
        return f"map<{sql_type(data_type.keyType)},{sql_type(data_type.valueType)}>"
    return data_type.simpleString()


def _delta_rs_add_columns(uri: str, fields: Sequence[StructField]) -> None:
    import deltalake
    import pyarrow as pa
    from deltalake.schema import Field
    from pyspark.sql.pandas.types import to_arrow_type

    deltalake.DeltaTable(uri).alter.add_columns(
        [
            Field.from_arrow(pa.field(f.name, to_arrow_type(f.dataType, timezone="UTC"), nullable=True))
            for f in fields
        ]
    )


class SparkSqlLog:
    """The Delta log through Spark SQL: Databricks, or Spark with delta-spark."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def _detail(self, uri: str):
        try:
            return self.spark.sql(f"DESCRIBE DETAIL delta.{quote_identifier(uri)}").first()
        except Exception as error:
            if re.search(
                r"not a Delta table|DELTA_MISSING_DELTA_TABLE|PATH_NOT_FOUND|does not exist", str(error)
            ):
                return None
            raise

    def exists(self, uri: str) -> bool:
        return self._detail(uri) is not None

    def version(self, uri: str) -> int | None:
        if not self.exists(uri):
            return None
        return self.history(uri, 1)[0]["version"]

    def history(self, uri: str, limit: int) -> list[dict[str, Any]]:
        rows = self.spark.sql(f"DESCRIBE HISTORY delta.{quote_identifier(uri)} LIMIT {int(limit)}").collect()
        return [row.asDict(recursive=True) for row in rows]

    def append_staged(self, uri: str, staged_uri: str, token: str, partition_by: Sequence[str]) -> bool:
        """The Delta writer skips a ``txnAppId`` it has committed before, and fails one that a
        concurrent writer is committing."""
        before = self.version(uri)
        writer = (
            self.spark.read.parquet(staged_uri)
            .write.format("delta")
            .mode("append")
            .option("mergeSchema", "true")
            .option("txnAppId", token)
            .option("txnVersion", "1")
        )
        if partition_by and before is None:
            writer = writer.partitionBy(*partition_by)
        writer.save(uri)
        return self.version(uri) != before

    def create_staged(
        self, uri: str, staged_uri: str, schema: StructType | None = None, partition_by: Sequence[str] = ()
    ) -> bool:
        """The Delta writer's ``errorifexists``: of two writers creating the table at once, one
        fails with a concurrent-protocol change (Delta Spark, Databricks)."""
        if self.exists(uri):
            return False
        reader = self.spark.read.schema(schema) if partition_by else self.spark.read  # columns from folders
        writer = reader.parquet(staged_uri).write.format("delta")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        try:
            writer.mode("errorifexists").save(uri)
        except Exception:
            if self.exists(uri):
                return False
            raise
        return True

    def takes_staged_partitions(self, uri: str, column: str) -> bool:
        """The engine's own ``replaceWhere`` writes the window: no staging."""
        return False

    def replace_staged(self, uri: str, staged_uri: str, window: DateWindow) -> bool:
        return False  # never staged (above): the caller writes the window itself

    def files(self, uri: str) -> TableFiles:
        detail = self._detail(uri)
        if detail is None:
            raise LookupError(f"{uri} is not a Delta table")
        return TableFiles(int(detail["numFiles"] or 0), int(detail["sizeInBytes"] or 0))

    def optimize(self, uri: str, zorder_by: Sequence[str]) -> dict[str, Any]:
        statement = f"OPTIMIZE delta.{quote_identifier(uri)}"
        if zorder_by:
            statement += f" ZORDER BY ({', '.join(quote_identifier(column) for column in zorder_by)})"
        row = self.spark.sql(statement).first()
        metrics = row["metrics"] if row is not None else None
        metrics = metrics.asDict() if hasattr(metrics, "asDict") else dict(metrics or {})
        return {
            "files_added": int(metrics.get("numFilesAdded", 0) or 0),
            "files_removed": int(metrics.get("numFilesRemoved", 0) or 0),
        }

    def vacuum(self, uri: str, retention_hours: int) -> int | None:
        """``VACUUM ... RETAIN n HOURS``. The files deleted are in the log's ``VACUUM END`` commit
        where the engine logs vacuums (Databricks does); None otherwise."""
        before = self.version(uri)
        self.spark.sql(f"VACUUM delta.{quote_identifier(uri)} RETAIN {int(retention_hours)} HOURS").collect()
        if self.version(uri) == before:
            return None
        for commit in self.history(uri, 2):
            if commit.get("operation") == "VACUUM END":
                deleted = (commit.get("operationMetrics") or {}).get("numDeletedFiles")
                return int(deleted) if deleted is not None else None
        return None

    def add_columns(self, uri: str, fields: Sequence[StructField]) -> None:
        columns = ", ".join(f"{quote_identifier(f.name)} {sql_type(f.dataType)}" for f in fields)
        self.spark.sql(f"ALTER TABLE delta.{quote_identifier(uri)} ADD COLUMNS ({columns})").collect()


class DeltaSparkLog(SparkSqlLog):
    """The Delta log through delta-spark's ``DeltaTable`` API: classic Spark with the Delta
    extension (open-source Spark, a Databricks cluster). Appends are Spark SQL's."""

    def exists(self, uri: str) -> bool:
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, uri)

    def version(self, uri: str) -> int | None:
        return self.history(uri, 1)[0]["version"] if self.exists(uri) else None

    def history(self, uri: str, limit: int) -> list[dict[str, Any]]:
        from delta.tables import DeltaTable

        rows = DeltaTable.forPath(self.spark, uri).history(limit).collect()
        return [row.asDict(recursive=True) for row in rows]


def _stage(frame: DataFrame, staging: str, partition_by: Sequence[str] = ()) -> None:
    """``frame`` written as Parquet files under ``staging`` (in a folder per partition, Hive's
    ``column=value``, if ``partition_by``). The engine writes no file for no rows (and reads a
    missing folder as a frame without columns): an empty file keeps the columns."""
    writer = frame.write.mode("overwrite")
    if partition_by:
        # Folders named by the values as text: the engine names a null date's folder 1970-01-01,
        # and a null text's as an empty text's. Hive's marker keeps a null a null.
        frame = frame.withColumns(
            {
                column: F.coalesce(F.col(quote_identifier(column)).cast("string"), F.lit(NULL_PARTITION))
                for column in partition_by
            }
        )
        # One task per partition value: a file per partition, not one per partition and task.
        frame = frame.repartition(*partition_by)
        writer = frame.write.mode("overwrite").partitionBy(*partition_by)
    writer.parquet(staging)
    if not list_parquet(staging):
        frame = frame.drop(*partition_by)
        with parquet_writer(join_uri(staging, "empty.parquet"), frame.limit(0).toArrow().schema):
            pass


def _matching(on: Sequence[str], null_safe: Sequence[str] = ()) -> str:
    """A MERGE condition. Plain equality lets the engine hash-join on the columns; null-safe
    equality (``<=>``) only where a value may be null: with it alone, Sail compares every
    target row with every source row."""
    return " AND ".join(
        f"t.{c} <=> s.{c}" if name in null_safe else f"t.{c} = s.{c}"
        for name, c in ((name, quote_identifier(name)) for name in on)
    )


def _nullable(schema):
    import pyarrow as pa

    return pa.schema([field.with_nullable(True) for field in schema])


def is_embedded_engine(spark: SparkSession) -> bool:
    """Sail names its catalog ``sail``; Databricks and Spark name theirs otherwise."""
    try:
        return spark.sql("SELECT current_catalog()").first()[0] == "sail"
    except Exception:
        return False


def has_delta_python_api(spark: SparkSession) -> bool:
    """A classic (JVM) session with the Delta extension, and delta-spark importable: the
    ``DeltaTable`` API works. Spark Connect sessions are told apart by their class."""
    import importlib.util

    if type(spark).__module__.startswith("pyspark.sql.connect") or importlib.util.find_spec("delta") is None:
        return False
    try:
        return "DeltaSparkSessionExtension" in (spark.conf.get("spark.sql.extensions", "") or "")
    except Exception:
        return False


def log_backend_for(spark: SparkSession) -> LogBackend:
    """Picked by what the engine can do, not by deployment: delta-rs where the engine has no
    Delta log commands and ignores application transaction ids (Sail); delta-spark's API on a
    classic Spark session with Delta; Spark SQL on any other engine (Databricks through
    Spark Connect)."""
    if is_embedded_engine(spark):
        return DeltaRsLog()
    if has_delta_python_api(spark):
        return DeltaSparkLog(spark)
    return SparkSqlLog(spark)
