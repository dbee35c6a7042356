"""The warehouse on Redshift Serverless: the production deployment's warehouse.

Through the Redshift Data API (boto3), with the IAM credentials of the default chain: the
Dagster role gets temporary database credentials for the workgroup, no password anywhere.
A load writes the lake rows as Parquet to a staging prefix in S3, then runs one
``BatchExecuteStatement``, which Redshift runs as one transaction: ``COPY`` the Parquet
files into a temporary table (``IAM_ROLE default``: the namespace's role reads the staging
prefix), create the table or add new columns, delete the range (or every row), insert the
staged rows, record the load. No ``LOCK``: Redshift's is exclusive, so readers would wait for
the whole load; the DELETE's write lock already orders writers (and the serving asset's pool
runs one load per table), and readers see the old rows until the commit. The staged files
are deleted afterwards, whatever happened.

Redshift folds identifiers to lower case (quoted ones too, unless the cluster sets
``enable_case_sensitive_identifier``), so lake columns are matched to the warehouse's without
case, and two lake columns differing only in case are refused. Redshift does not enforce
primary keys either: the staged rows are checked for duplicate keys before the load.
"""

from __future__ import annotations

import contextlib
import io
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import PrivateAttr

from lakehouse_dagster.lake.layout import join_uri
from lakehouse_dagster.serving.schema import (
    Column,
    IncompatibleSchemaError,
    plan_schema,
    warehouse_columns,
)
from lakehouse_dagster.serving.spec import LOADED_AT, SERVING_SCHEMA, DateRange, ServedTable
from lakehouse_dagster.serving.warehouse import LOADS_TABLE, LoadRecord, LoadResult, Warehouse

#: Redshift's TEXT is VARCHAR(256); serve text in the widest VARCHAR.
TEXT = "character varying(65535)"
#: Parquet files of at most this many rows each (COPY loads the files of a prefix in parallel).
ROWS_PER_FILE = 1_000_000
#: The most statements one ``BatchExecuteStatement`` takes (its ``Sqls`` member).
MAX_STATEMENTS = 40
#: Sample duplicate keys named by a refused load.
SAMPLE_KEYS = 5
_DONE = {"FINISHED", "FAILED", "ABORTED"}


class RedshiftError(RuntimeError):
    pass


class DuplicateKeyError(ValueError):
    """The rows of a load hold a primary key twice (Redshift would not refuse them)."""


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def qualified(name: str) -> str:
    return f"{quote(SERVING_SCHEMA)}.{quote(name)}"


def load_statements(
    table: ServedTable,
    wanted: Sequence[Column],
    existing: Sequence[Column] | None,
    *,
    staged_uri: str,
    window: DateRange | None,
    source_version: int,
    run_id: str,
) -> list[str]:
    """The SQL of one load, run by Redshift as one transaction, in order."""
    target = qualified(table.name)
    names = ", ".join(quote(column.name) for column in wanted)
    definitions = ", ".join(f"{quote(c.name)} {c.type}" for c in wanted)
    statements = [
        f"CREATE TEMPORARY TABLE lakehouse_stage ({definitions})",
        f"COPY lakehouse_stage FROM {literal(staged_uri.rstrip('/') + '/')} "
        "IAM_ROLE default FORMAT AS PARQUET",
    ]
    if existing is None:
        key = f", PRIMARY KEY ({', '.join(quote(c) for c in table.primary_key)})" if table.primary_key else ""
        sort = f" SORTKEY ({quote(table.partition_column)})" if table.partition_column else ""
        statements += [
            f"CREATE TABLE {target} ({definitions}, {quote(LOADED_AT)} timestamptz NOT NULL{key}){sort}",
            # Loads recorded for a table since dropped (to reload it) load nothing now.
            f"DELETE FROM {qualified(LOADS_TABLE)} WHERE table_name = {literal(table.name)}",
        ]
    else:
        plan = plan_schema(table.qualified, table.source, list(existing), list(wanted))
        statements += [f"ALTER TABLE {target} ADD COLUMN {quote(c.name)} {c.type}" for c in plan.add]
    if window is not None:
        column = quote(table.partition_column or "")
        start, end = literal(window.start), literal(window.end)
        statements.append(f"DELETE FROM {target} WHERE {column} >= {start} AND {column} < {end}")
    else:
        statements.append(f"DELETE FROM {target}")
    statements += [
        f"INSERT INTO {target} ({names}, {quote(LOADED_AT)}) SELECT {names}, SYSDATE FROM lakehouse_stage",
        f"INSERT INTO {qualified(LOADS_TABLE)} (table_name, window_start, window_end, source, "
        "source_version, rows_loaded, run_id, loaded_at) SELECT "
        + ", ".join(
            [
                literal(table.name),
                f"{literal(window.start)}::date" if window else "NULL::date",
                f"{literal(window.end)}::date" if window else "NULL::date",
                literal(table.source),
                literal(source_version),
                "(SELECT count(*) FROM lakehouse_stage)",
                literal(run_id),
                "SYSDATE",
            ]
        ),
    ]
    return statements


def parquet_parts(rows: pa.RecordBatchReader, rows_per_file: int = ROWS_PER_FILE) -> Iterator[bytes]:
    """The rows as Parquet files of at most ``rows_per_file`` rows (none for no rows)."""
    buffer, writer, in_file = None, None, 0
    for batch in rows:
        if batch.num_rows == 0:
            continue
        if writer is None:
            buffer = io.BytesIO()
            writer = pq.ParquetWriter(buffer, rows.schema)
        writer.write_batch(batch)
        in_file += batch.num_rows
        if in_file >= rows_per_file:
            writer.close()
            yield buffer.getvalue()  # type: ignore[union-attr]
            buffer, writer, in_file = None, None, 0
    if writer is not None:
        writer.close()
        yield buffer.getvalue()  # type: ignore[union-attr]


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def batches(statements: list[str]) -> list[list[str]]:
    """``statements`` as one batch if it fits Redshift's limit; otherwise the first column
    additions go ahead in batches of their own (adding an empty column changes no row)."""
    excess = len(statements) - MAX_STATEMENTS
    if excess <= 0:
        return [statements]
    additions = [s for s in statements if s.startswith("ALTER TABLE ")][:excess]
    rest = [s for s in statements if s not in additions]
    if len(rest) > MAX_STATEMENTS:
        raise ValueError(f"a load of {len(statements)} statements cannot fit Redshift's batches")
    ahead = [additions[i : i + MAX_STATEMENTS] for i in range(0, len(additions), MAX_STATEMENTS)]
    return [*ahead, rest]


def refuse_case_clashes(table: ServedTable, columns: Sequence[Column]) -> None:
    """Redshift folds column names to lower case: two that differ only in case would clash."""
    seen: dict[str, str] = {}
    for column in columns:
        other = seen.setdefault(column.name.lower(), column.name)
        if other != column.name:
            raise IncompatibleSchemaError(
                f"{table.qualified}: columns {other!r} and {column.name!r} of {table.source} differ "
                "only in case, and Redshift folds column names to lower case; rename one in the lake"
            )


def in_lake_case(existing: Sequence[Column], wanted: Sequence[Column]) -> list[Column]:
    """The warehouse's columns (lower case, as Redshift keeps them) named as the lake names them."""
    lake_name = {column.name.lower(): column.name for column in wanted}
    return [Column(lake_name.get(column.name.lower(), column.name), column.type) for column in existing]


class KeyCollector:
    """Keeps the primary key columns of the batches it passes on, to find duplicate keys."""

    def __init__(self, primary_key: Sequence[str]) -> None:
        self.primary_key = list(primary_key)
        self.keys: list[pa.RecordBatch] = []

    def tee(self, rows: pa.RecordBatchReader) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            for batch in rows:
                if self.primary_key:
                    self.keys.append(batch.select(self.primary_key))
                yield batch

        return pa.RecordBatchReader.from_batches(rows.schema, batches())

    def refuse_duplicates(self, table: ServedTable) -> None:
        if not self.primary_key or not self.keys:
            return
        counts = pa.Table.from_batches(self.keys).group_by(self.primary_key).aggregate([([], "count_all")])
        twice = counts.filter(pc.greater(counts["count_all"], 1))
        if twice.num_rows:
            samples = twice.select(self.primary_key).slice(0, SAMPLE_KEYS).to_pylist()
            raise DuplicateKeyError(
                f"{table.qualified}: {twice.num_rows} primary keys ({', '.join(self.primary_key)}) occur "
                f"more than once in {table.source}, such as {samples}; nothing was loaded"
            )


class RedshiftWarehouse(Warehouse):
    """Redshift Serverless through the Data API; loads are staged as Parquet under ``staging_uri``."""

    workgroup: str
    database: str
    #: ``s3://bucket/prefix`` the namespace's default IAM role may read, the Dagster role write.
    staging_uri: str
    region_name: str | None = None
    #: Tests point the clients at a moto server.
    endpoint_url: str | None = None
    poll_seconds: float = 0.5
    #: A statement still running after this long is cancelled and the load fails.
    statement_timeout_seconds: float = 3600.0

    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def kind(self) -> str:
        return "redshift"

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service, region_name=self.region_name, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    # Statements -----------------------------------------------------------------------------------

    def _wait(self, statement_id: str, what: str) -> dict[str, Any]:
        """The statement's description once it ended. A step interrupted (or a timeout) while it
        runs cancels it: the transaction must not commit after the run gave up on it."""
        client = self._client("redshift-data")
        deadline = time.monotonic() + self.statement_timeout_seconds
        try:
            while True:
                described = client.describe_statement(Id=statement_id)
                if described["Status"] in _DONE:
                    break
                if time.monotonic() > deadline:
                    raise RedshiftError(
                        f"{what}: Redshift workgroup {self.workgroup} did not finish statement "
                        f"{statement_id} within statement_timeout_seconds={self.statement_timeout_seconds}"
                    )
                time.sleep(self.poll_seconds)
        except BaseException:
            # Already finished, or unreachable: the original error is the one to raise.
            with contextlib.suppress(Exception):
                client.cancel_statement(Id=statement_id)
            raise
        if described["Status"] != "FINISHED":
            raise RedshiftError(
                f"{what}: Redshift workgroup {self.workgroup}: {described['Status']}: "
                f"{described.get('Error', '')}"
            )
        return described

    def execute(self, statements: Sequence[str], what: str = "a statement batch") -> None:
        """Run ``statements`` as one transaction; errors name ``what`` it was for."""
        response = self._client("redshift-data").batch_execute_statement(
            WorkgroupName=self.workgroup, Database=self.database, Sqls=list(statements)
        )
        self._wait(response["Id"], what)

    def query(self, statement: str) -> list[list[Any]]:
        client = self._client("redshift-data")
        response = client.execute_statement(
            WorkgroupName=self.workgroup, Database=self.database, Sql=statement
        )
        described = self._wait(response["Id"], f"query {statement[:80]!r}")
        if not described.get("HasResultSet"):
            return []
        rows, token = [], None
        while True:
            page = client.get_statement_result(Id=response["Id"], **({"NextToken": token} if token else {}))
            rows += [[_value(field) for field in record] for record in page["Records"]]
            token = page.get("NextToken")
            if not token:
                return rows

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
        wanted = warehouse_columns(rows.schema, text_type=TEXT)
        refuse_case_clashes(table, wanted)
        what = f"loading {table.qualified} from {table.source}"
        self._bootstrap(what)
        existing = self.columns(table.name)
        if existing is not None:
            existing = in_lake_case(existing, wanted)
            plan_schema(table.qualified, table.source, existing, wanted)  # fail before staging anything
        staged = join_uri(self.staging_uri, table.name, uuid.uuid4().hex)
        keys = KeyCollector(table.primary_key)
        try:
            staged_files = self.stage(staged, keys.tee(rows))
            keys.refuse_duplicates(table)
            statements = (
                load_statements(
                    table,
                    wanted,
                    existing,
                    staged_uri=staged,
                    window=window,
                    source_version=source_version,
                    run_id=run_id,
                )
                if staged_files
                else _empty_load(table, wanted, existing, window, source_version, run_id)
            )
            for batch in batches(statements):
                self.execute(batch, what)
        finally:
            self.unstage(staged)
        record = self.query(
            f"SELECT rows_loaded, loaded_at FROM {qualified(LOADS_TABLE)} "
            f"WHERE table_name = {literal(table.name)} AND run_id = {literal(run_id)} "
            "ORDER BY loaded_at DESC LIMIT 1"
        )
        loaded_rows, loaded_at = record[0] if record else (0, datetime.now(UTC))
        return LoadResult(
            table=table.qualified,
            rows=int(loaded_rows),
            loaded_at=_timestamp(loaded_at),
            window=window,
            created=existing is None,
            columns_added=tuple(
                c.name for c in wanted if existing is not None and c.name not in {e.name for e in existing}
            ),
        )

    def stage(self, staged_uri: str, rows: pa.RecordBatchReader) -> list[str]:
        """Write the rows as Parquet files under ``staged_uri``; return their keys."""
        bucket, prefix = split_s3_uri(staged_uri)
        keys = []
        for number, part in enumerate(parquet_parts(rows)):
            key = f"{prefix.rstrip('/')}/part-{number:05d}.parquet"
            self._client("s3").upload_fileobj(io.BytesIO(part), bucket, key)
            keys.append(key)
        return keys

    def unstage(self, staged_uri: str) -> None:
        """Delete every object under ``staged_uri``, and abort the multipart uploads left there
        unfinished (their parts are no objects, and would stay until the bucket's lifecycle)."""
        bucket, prefix = split_s3_uri(staged_uri)
        s3 = self._client("s3")
        folder = prefix.rstrip("/") + "/"
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=folder):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder)
        for page in pages:
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if not objects:
                continue
            errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects}).get("Errors", [])
            if errors:
                raise RedshiftError(
                    f"could not delete {len(errors)} staged files under {staged_uri}, "
                    f"such as {errors[0].get('Key')}: {errors[0].get('Message')}"
                )

    def _bootstrap(self, what: str) -> None:
        self.execute(
            [
                f"CREATE SCHEMA IF NOT EXISTS {quote(SERVING_SCHEMA)}",
                f"CREATE TABLE IF NOT EXISTS {qualified(LOADS_TABLE)} (table_name varchar(128) NOT NULL, "
                "window_start date, window_end date, source varchar(256) NOT NULL, "
                "source_version bigint NOT NULL, rows_loaded bigint NOT NULL, run_id varchar(128) NOT NULL, "
                "loaded_at timestamptz NOT NULL)",
            ],
            what,
        )

    def columns(self, name: str) -> list[Column] | None:
        rows = self.query(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
            f"FROM svv_columns WHERE table_schema = {literal(SERVING_SCHEMA)} "
            f"AND table_name = {literal(name)} ORDER BY ordinal_position"
        )
        if not rows:
            return None
        return [
            Column(column, _type(data_type, length, precision, scale))
            for column, data_type, length, precision, scale in rows
            if column != LOADED_AT
        ]

    # Reads ----------------------------------------------------------------------------------------

    def row_count(self, table: ServedTable) -> int | None:
        if self.columns(table.name) is None:
            return None
        return int(self.query(f"SELECT count(*) FROM {qualified(table.name)}")[0][0])

    def counts_by_day(self, table: ServedTable, window: DateRange | None = None) -> dict[date, int]:
        if table.partition_column is None:
            raise ValueError(f"{table.qualified} is not partitioned by day")
        if self.columns(table.name) is None:
            return {}
        column = quote(table.partition_column)
        where = (
            f" WHERE {column} >= {literal(window.start)} AND {column} < {literal(window.end)}"
            if window
            else ""
        )
        rows = self.query(f"SELECT {column}, count(*) FROM {qualified(table.name)}{where} GROUP BY 1")
        return {date.fromisoformat(str(day)): int(n) for day, n in rows}

    def loads(self, table: ServedTable) -> list[LoadRecord]:
        """The loads of the table as it exists: none if it does not (dropped to reload it)."""
        if self.columns(table.name) is None:
            return []
        rows = self.query(
            f"SELECT window_start, window_end, max(loaded_at) FROM {qualified(LOADS_TABLE)} "
            f"WHERE table_name = {literal(table.name)} GROUP BY 1, 2"
        )
        return [
            LoadRecord(
                date.fromisoformat(str(start)) if start else None,
                date.fromisoformat(str(end)) if end else None,
                _timestamp(loaded_at),
            )
            for start, end, loaded_at in rows
        ]


def _empty_load(
    table: ServedTable,
    wanted: Sequence[Column],
    existing: Sequence[Column] | None,
    window: DateRange | None,
    source_version: int,
    run_id: str,
) -> list[str]:
    """No rows to load: the same transaction without the COPY (COPY fails on an empty prefix)."""
    statements = load_statements(
        table,
        wanted,
        existing,
        staged_uri="s3://unused/",
        window=window,
        source_version=source_version,
        run_id=run_id,
    )
    return [s for s in statements if not s.startswith("COPY ")]


def _value(field: dict[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    return next(iter(field.values()))


def _type(data_type: str, length: Any, precision: Any, scale: Any) -> str:
    if data_type == "character varying":
        return f"character varying({length})"
    if data_type == "numeric":
        return f"numeric({precision},{scale})"
    return data_type


def _timestamp(value: Any) -> datetime:
    """A ``timestamptz`` as the Data API returns it (text with any offset, or none: UTC)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
