"""A fake Redshift Data API client over a real PostgreSQL database, with the Redshift rules a
load meets (documented; moto implements none of ``BatchExecuteStatement``):

- a batch is one transaction, rolled back at its first error, of at most 40 statements (the
  ``Sqls`` limit of botocore's service model);
- identifiers are folded to lower case, quoted ones too (``enable_case_sensitive_identifier``
  is off by default);
- ``COPY ... FORMAT AS PARQUET`` reads every object under the prefix (from moto's S3) and
  maps columns by position;
- primary keys are not enforced;
- ``SYSDATE`` is the transaction's start in the session's time zone (a ``TIMESTAMP``), and
  ``svv_columns`` is ``information_schema.columns``;
- results come back in the Data API's shape, a few records a page.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from typing import Any

import botocore.session
import psycopg
import pyarrow.parquet as pq

MAX_SQLS = (
    botocore.session.get_session()
    .get_service_model("redshift-data")
    .operation_model("BatchExecuteStatement")
    .input_shape.members["Sqls"]
    .metadata["max"]
)
_COPY = re.compile(r"^COPY (\S+) FROM '([^']*)' IAM_ROLE default FORMAT AS PARQUET$")


class ValidationException(Exception):
    """What the service answers a request its model refuses."""


def fold_identifiers(sql: str) -> str:
    """``sql`` with every double-quoted identifier in lower case (string literals untouched)."""
    out, i = [], 0
    while i < len(sql):
        quote = sql[i]
        if quote not in "'\"":
            out.append(quote)
            i += 1
            continue
        j = i + 1
        while j < len(sql) and not (sql[j] == quote and sql[j + 1 : j + 2] != quote):
            j += 2 if sql[j] == quote else 1
        token = sql[i : j + 1]
        out.append(token.lower() if quote == '"' else token)
        i = j + 1
    return "".join(out)


class FakeRedshiftData:
    """``batch_execute_statement``, ``execute_statement``, ``describe_statement`` and
    ``get_statement_result`` on the PostgreSQL database at ``url``."""

    def __init__(
        self, url: str, s3: Any, *, time_zone: str = "UTC", page_size: int = 2, hang: bool = False
    ) -> None:
        self.url, self.s3, self.time_zone, self.page_size = url, s3, time_zone, page_size
        #: Batches never finish (until cancelled): a stuck workgroup.
        self.hang = hang
        self.statements: dict[str, dict[str, Any]] = {}
        self.batches: list[list[str]] = []
        self.cancelled: list[str] = []

    def translate(self, sql: str) -> str:
        sql = fold_identifiers(sql)
        sql = re.sub(r"\) SORTKEY \([^)]*\)$", ")", sql)
        sql = re.sub(r", PRIMARY KEY \([^)]*\)\)", ")", sql)
        sql = sql.replace("SYSDATE", "LOCALTIMESTAMP")
        return sql.replace("FROM svv_columns", "FROM information_schema.columns")

    def _copy(self, cursor: psycopg.Cursor, table: str, uri: str) -> None:
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        if not listed:
            raise RuntimeError(f"S3ServiceException: the prefix {prefix!r} does not exist")
        cursor.execute(f"SELECT * FROM {table} LIMIT 0")
        width = len(cursor.description or ())
        for item in listed:
            rows = pq.read_table(
                io.BytesIO(self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            )
            if rows.num_columns != width:
                raise RuntimeError(f"Spectrum Scan Error: {rows.num_columns} columns, the table has {width}")
            values = list(zip(*(column.to_pylist() for column in rows.columns), strict=True))
            if values:
                cursor.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * width)})", values)

    def _run(self, cursor: psycopg.Cursor, sql: str) -> None:
        copy = _COPY.match(sql)
        if copy:
            self._copy(cursor, self.translate(copy.group(1)), copy.group(2))
        else:
            cursor.execute(self.translate(sql))

    def _connect(self) -> psycopg.Connection:
        connection = psycopg.connect(self.url)
        connection.execute(f"SET TimeZone = '{self.time_zone}'")
        return connection

    def batch_execute_statement(self, *, WorkgroupName: str, Database: str, Sqls: list[str]) -> dict:
        if len(Sqls) > MAX_SQLS:
            raise ValidationException(f"Sqls: length {len(Sqls)} is more than {MAX_SQLS}")
        self.batches.append(list(Sqls))
        statement = str(uuid.uuid4())
        if self.hang:
            self.statements[statement] = {"Status": "STARTED"}
            return {"Id": statement}
        try:
            with self._connect() as connection, connection.transaction(), connection.cursor() as cursor:
                for sql in Sqls:
                    self._run(cursor, sql)
            self.statements[statement] = {"Status": "FINISHED", "HasResultSet": False}
        except Exception as error:
            self.statements[statement] = {"Status": "FAILED", "Error": f"ERROR: {error}"}
        return {"Id": statement}

    def execute_statement(self, *, WorkgroupName: str, Database: str, Sql: str) -> dict:
        statement = str(uuid.uuid4())
        try:
            with self._connect() as connection, connection.cursor() as cursor:
                self._run(cursor, Sql)
                rows = cursor.fetchall() if cursor.description else None
            self.statements[statement] = {
                "Status": "FINISHED",
                "HasResultSet": rows is not None,
                "rows": [[_field(value) for value in row] for row in rows or []],
            }
        except Exception as error:
            self.statements[statement] = {"Status": "FAILED", "Error": f"ERROR: {error}"}
        return {"Id": statement}

    def cancel_statement(self, *, Id: str) -> dict:
        self.cancelled.append(Id)
        self.statements[Id] = {"Status": "ABORTED"}
        return {"Status": True}

    def describe_statement(self, *, Id: str) -> dict:
        return {k: v for k, v in self.statements[Id].items() if k != "rows"} | {"Id": Id}

    def get_statement_result(self, *, Id: str, NextToken: str | None = None) -> dict:
        rows = self.statements[Id]["rows"]
        start = int(NextToken or 0)
        page: dict[str, Any] = {"Records": rows[start : start + self.page_size]}
        if start + self.page_size < len(rows):
            page["NextToken"] = str(start + self.page_size)
        return page


def _field(value: Any) -> dict[str, Any]:
    """A value as the Data API returns it: text for timestamps, dates and decimals."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        offset = value.strftime("%z")  # as PostgreSQL and Redshift print it: +05, -05, +05:30
        offset = offset[:3] if offset.endswith("00") else f"{offset[:3]}:{offset[3:]}"
        return {"stringValue": value.strftime("%Y-%m-%d %H:%M:%S.%f") + offset}
    return {"stringValue": str(value)}
