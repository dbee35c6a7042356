"""The warehouse on PostgreSQL: the local and test deployments' warehouse.

A load streams the lake rows with ``COPY ... FROM STDIN`` (CSV written by Arrow, not row by
row) into a temporary staging table, then, in the same transaction, takes the served table's
EXCLUSIVE lock (readers go on reading), deletes the range being replaced (or every row) and
inserts the staged rows. Readers see the old rows until the commit and the new ones after it:
never a half-loaded or empty table. A failure anywhere rolls everything back, new columns
and a new table included.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from lakehouse_dagster.serving.schema import Column, plan_schema, warehouse_columns
from lakehouse_dagster.serving.spec import LOADED_AT, SERVING_SCHEMA, DateRange, ServedTable
from lakehouse_dagster.serving.warehouse import (
    LOADS_TABLE,
    LoadRecord,
    LoadResult,
    Warehouse,
    WarehouseLoadError,
    WarehouseUnavailableError,
)

#: Where ``make warehouse`` writes the URL of the project-local server.
LOCAL_URL_FILE = "url"
_CSV = pa_csv.WriteOptions(include_header=False, batch_size=65_536)


def ident(*parts: str) -> sql.Identifier:
    return sql.Identifier(*parts)


class PostgresWarehouse(Warehouse):
    """A PostgreSQL warehouse at ``url``; without one, the project-local server that
    ``make warehouse`` starts (its URL is in ``<local_dir>/url``)."""

    url: str | None = None
    #: Where ``make warehouse`` keeps the project-local server; None: ``url`` is required.
    local_dir: str | None = ".warehouse"

    @property
    def kind(self) -> str:
        return "postgres"

    # Connections --------------------------------------------------------------------------------

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        if self.local_dir is None:
            raise WarehouseUnavailableError(
                "no warehouse: set LAKEHOUSE_WAREHOUSE_URL to a PostgreSQL URL (only the local "
                "deployment falls back on the project-local server of `make warehouse`)"
            )
        path = Path(self.local_dir) / LOCAL_URL_FILE
        if not path.is_file():
            raise WarehouseUnavailableError(
                f"no warehouse: {path} does not exist. Start the project-local PostgreSQL with "
                "`make warehouse`, or set LAKEHOUSE_WAREHOUSE_URL to a PostgreSQL URL."
            )
        return path.read_text(encoding="utf-8").strip()

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        url = self.resolved_url()
        try:
            connection = psycopg.connect(url, connect_timeout=10)
        except psycopg.OperationalError as error:
            hint = "" if self.url else " Is it running? Start it with `make warehouse`."
            raise WarehouseUnavailableError(
                f"cannot connect to the warehouse at {_safe(url)}: {error}{hint}"
            ) from None
        with connection:
            yield connection

    # Loads ----------------------------------------------------------------------------------------

    def load(
        self,
        table: ServedTable,
        rows: pa.RecordBatchReader,
        *,
        window: DateRange | None,
        source_version: int,
        run_id: str,
    ) -> LoadResult:
        if (window is None) != (table.partition_column is None):
            raise ValueError(
                f"{table.qualified}: a partitioned table is loaded by date range, any other whole"
            )
        wanted = warehouse_columns(rows.schema)
        target = ident(SERVING_SCHEMA, table.name)
        with _refused_rows(table), self.connect() as connection:
            self._bootstrap(connection)
            with connection.transaction(), connection.cursor() as cursor:
                # One load of a table at a time; other tables load side by side.
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [table.qualified])
                existing = _columns(cursor, table.name)
                plan = plan_schema(table.qualified, table.source, existing, wanted) if existing else None
                _stage(cursor, wanted, rows)
                if existing is None:
                    _create(cursor, table, wanted)
                    # Loads recorded for a table since dropped (to reload it) load nothing now.
                    cursor.execute(
                        sql.SQL("DELETE FROM {} WHERE table_name = %s").format(
                            ident(SERVING_SCHEMA, LOADS_TABLE)
                        ),
                        [table.name],
                    )
                for column in plan.add if plan else ():
                    cursor.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                            target, ident(column.name), sql.SQL(column.type)
                        )
                    )
                cursor.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(target))
                if window is not None:
                    assert table.partition_column is not None
                    cursor.execute(
                        sql.SQL("DELETE FROM {} WHERE {} >= %s AND {} < %s").format(
                            target, ident(table.partition_column), ident(table.partition_column)
                        ),
                        [window.start, window.end],
                    )
                else:
                    cursor.execute(sql.SQL("DELETE FROM {}").format(target))
                names = sql.SQL(", ").join(ident(column.name) for column in wanted)
                cursor.execute(
                    sql.SQL("INSERT INTO {} ({}, {}) SELECT {}, now() FROM lakehouse_stage").format(
                        target, names, ident(LOADED_AT), names
                    )
                )
                inserted = cursor.rowcount
                cursor.execute(
                    sql.SQL(
                        "INSERT INTO {} (table_name, window_start, window_end, source, source_version, "
                        "rows_loaded, run_id, loaded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now()) "
                        "RETURNING loaded_at"
                    ).format(ident(SERVING_SCHEMA, LOADS_TABLE)),
                    [
                        table.name,
                        window.start if window else None,
                        window.end if window else None,
                        table.source,
                        source_version,
                        inserted,
                        run_id,
                    ],
                )
                loaded_at = cursor.fetchone()[0]
        return LoadResult(
            table=table.qualified,
            rows=inserted,
            loaded_at=loaded_at,
            window=window,
            created=existing is None,
            columns_added=tuple(column.name for column in plan.add) if plan else (),
        )

    def _bootstrap(self, connection: psycopg.Connection) -> None:
        """The serving schema and the loads record, once (concurrent first loads queue here)."""
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('lakehouse serving schema', 0))")
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(SERVING_SCHEMA)))
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (table_name text NOT NULL, window_start date, "
                    "window_end date, source text NOT NULL, source_version bigint NOT NULL, "
                    "rows_loaded bigint NOT NULL, run_id text NOT NULL, loaded_at timestamptz NOT NULL)"
                ).format(ident(SERVING_SCHEMA, LOADS_TABLE))
            )

    # Reads for the checks and the dashboard ---------------------------------------------------------

    def row_count(self, table: ServedTable) -> int | None:
        with self.connect() as connection, connection.cursor() as cursor:
            if _columns(cursor, table.name) is None:
                return None
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(ident(SERVING_SCHEMA, table.name)))
            return cursor.fetchone()[0]

    def counts_by_day(self, table: ServedTable, window: DateRange | None = None) -> dict[date, int]:
        if table.partition_column is None:
            raise ValueError(f"{table.qualified} is not partitioned by day")
        column = ident(table.partition_column)
        where, parameters = sql.SQL(""), []
        if window is not None:
            where = sql.SQL(" WHERE {} >= %s AND {} < %s").format(column, column)
            parameters = [window.start, window.end]
        with self.connect() as connection, connection.cursor() as cursor:
            if _columns(cursor, table.name) is None:
                return {}
            cursor.execute(
                sql.SQL("SELECT {}, count(*) FROM {}{} GROUP BY 1").format(
                    column, ident(SERVING_SCHEMA, table.name), where
                ),
                parameters,
            )
            return dict(cursor.fetchall())

    def loads(self, table: ServedTable) -> list[LoadRecord]:
        """The loads of the table as it exists: none if it does not (dropped to reload it)."""
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{SERVING_SCHEMA}.{LOADS_TABLE}"])
            if not cursor.fetchone()[0] or _columns(cursor, table.name) is None:
                return []
            cursor.execute(
                sql.SQL(
                    "SELECT window_start, window_end, max(loaded_at) FROM {} WHERE table_name = %s "
                    "GROUP BY 1, 2"
                ).format(ident(SERVING_SCHEMA, LOADS_TABLE)),
                [table.name],
            )
            return [LoadRecord(start, end, loaded_at) for start, end, loaded_at in cursor.fetchall()]


@contextmanager
def _refused_rows(table: ServedTable) -> Iterator[None]:
    """Rows the warehouse refuses (a NUL in text, a duplicate key), named by the served table."""
    try:
        yield
    except (psycopg.DataError, psycopg.IntegrityError) as error:
        raise WarehouseLoadError(
            f"{table.qualified} (from {table.source}): the warehouse refused the rows, and kept the "
            f"table as it was: {type(error).__name__}: {str(error).strip()}"
        ) from error


def _safe(url: str) -> str:
    """The URL without its password."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port, database = info.get("host", ""), info.get("port", ""), info.get("dbname", "")
    return f"{host}:{port}/{database}" if host else url.split("@")[-1]


def _columns(cursor: psycopg.Cursor, name: str) -> list[Column] | None:
    """The served table's columns as PostgreSQL spells their types, ``_loaded_at`` left out;
    None if the table does not exist."""
    cursor.execute("SELECT to_regclass(%s)", [f'{SERVING_SCHEMA}."{name}"'])
    relation = cursor.fetchone()[0]
    if relation is None:
        return None
    cursor.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [f'{SERVING_SCHEMA}."{name}"'],
    )
    return [Column(n, t) for n, t in cursor.fetchall() if n != LOADED_AT]


def _stage(cursor: psycopg.Cursor, columns: list[Column], rows: pa.RecordBatchReader) -> None:
    """The rows in a temporary table of this transaction, through COPY in CSV written by Arrow
    (null is an empty field, an empty string is quoted)."""
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(ident(column.name), sql.SQL(column.type)) for column in columns
    )
    cursor.execute(sql.SQL("CREATE TEMPORARY TABLE lakehouse_stage ({}) ON COMMIT DROP").format(definitions))
    names = sql.SQL(", ").join(ident(column.name) for column in columns)
    with cursor.copy(sql.SQL("COPY lakehouse_stage ({}) FROM STDIN (FORMAT csv)").format(names)) as copy:
        for batch in rows:
            if batch.num_rows:
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, _CSV)
                copy.write(buffer.getbuffer())


def _create(cursor: psycopg.Cursor, table: ServedTable, columns: list[Column]) -> None:
    target = ident(SERVING_SCHEMA, table.name)
    parts = [sql.SQL("{} {}").format(ident(column.name), sql.SQL(column.type)) for column in columns]
    parts.append(sql.SQL("{} timestamptz NOT NULL").format(ident(LOADED_AT)))
    if table.primary_key:
        parts.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(ident(c) for c in table.primary_key))
        )
    cursor.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(parts)))
    if table.partition_column and table.primary_key[:1] != (table.partition_column,):
        cursor.execute(sql.SQL("CREATE INDEX ON {} ({})").format(target, ident(table.partition_column)))
    comment = f"{table.description} Loaded from {table.source}."
    cursor.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(target, sql.Literal(comment.strip())))
    docs = dict(table.column_docs)
    docs[LOADED_AT] = "When the row was loaded: the time of its load's transaction."
    known = {column.name for column in columns} | {LOADED_AT}
    for name, doc in docs.items():
        if name in known:
            cursor.execute(
                sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                    ident(SERVING_SCHEMA, table.name, name), sql.Literal(doc)
                )
            )
