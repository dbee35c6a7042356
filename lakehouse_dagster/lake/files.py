"""Files of the landing zone and of staging: local folders or S3.

Listing follows the Spark/Hadoop convention: a file or folder whose name starts with ``_``
or ``.`` is hidden (writers' ``_temporary/`` and ``.staging/`` folders, ``_SUCCESS``
markers), so half-written copies are never picked up.

Every listed file carries a *fingerprint* that changes when the file is replaced: locally its
size, modification time, inode and change time (``utime`` cannot reset the change time); on
S3 its ETag. S3 is reached through the AWS seam (``aws/clients.py``): a moto endpoint
locally, AWS's default credential chain in production.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.lake.layout import is_remote


@dataclass(frozen=True, order=True)
class LandingFile:
    """A file as listed. Its identity for exactly-once ingestion is ``uri``."""

    modified_at: datetime
    uri: str
    size: int
    fingerprint: str = ""
    #: When the file appeared: S3's LastModified; locally the later of its modification and
    #: change times (a copy that keeps an old mtime still appears now). Sensors order by it.
    landed_at: datetime | None = field(default=None, compare=False)


def is_hidden(relative_path: str) -> bool:
    """True if any segment of the path below the watched folder starts with ``_`` or ``.``."""
    return any(part.startswith(("_", ".")) for part in relative_path.split("/") if part)


def content_hash(data: bytes) -> str:
    """A cheap hash of a file's bytes, to tell a replaced file from a touched one."""
    return f"crc32:{zlib.crc32(data):08x}:{len(data)}"


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if is_remote(uri):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri


def _local_file(path: str, stat: os.stat_result) -> LandingFile:
    return LandingFile(
        modified_at=datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC),
        uri=path,
        size=stat.st_size,
        fingerprint=f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_ctime_ns}",
        landed_at=datetime.fromtimestamp(max(stat.st_mtime_ns, stat.st_ctime_ns) / 1e9, UTC),
    )


def _walk_local(folder: str) -> Iterator[tuple[str, os.DirEntry]]:
    stack = [(folder, "")]
    while stack:
        directory, relative = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith(("_", ".")):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{relative}{entry.name}/"))
            elif entry.is_file():
                yield f"{relative}{entry.name}", entry


def _bucket_and_key(uri: str) -> tuple[str, str]:
    """Split by hand: ``urlparse`` would take a key's ``#`` or ``?`` for a fragment or a query."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _s3_landing_file(bucket: str, key: str, modified_at: datetime, size: int, etag: str) -> LandingFile:
    modified_at = modified_at.astimezone(UTC)
    return LandingFile(modified_at, f"s3://{bucket}/{key}", size, etag.strip('"'), landed_at=modified_at)


def list_s3_objects(aws: AwsConfig, bucket: str, prefix: str) -> Iterator[LandingFile]:
    """Every object under ``prefix``, hidden or not, in key order (``list_objects_v2``)."""
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield _s3_landing_file(bucket, item["Key"], item["LastModified"], item["Size"], item["ETag"])


def _list_s3(folder_uri: str, suffix: str, aws: AwsConfig) -> list[LandingFile]:
    bucket, path = _bucket_and_key(folder_uri)
    prefix = path.rstrip("/") + "/"
    return [
        landed
        for landed in list_s3_objects(aws, bucket, prefix)
        if landed.uri.endswith(suffix) and not is_hidden(landed.uri[len(f"s3://{bucket}/{prefix}") :])
    ]


def _s3_missing(error: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
        "404",
        "NoSuchKey",
        "NotFound",
    )


def head_s3(uri: str, aws: AwsConfig) -> LandingFile | None:
    """The object as listed, or None if it does not exist."""
    bucket, key = _bucket_and_key(uri)
    try:
        head = aws.client("s3").head_object(Bucket=bucket, Key=key)
    except Exception as error:
        if _s3_missing(error):
            return None
        raise
    return _s3_landing_file(bucket, key, head["LastModified"], head["ContentLength"], head["ETag"])


def _get_s3(uri: str, aws: AwsConfig, byte_range: str | None = None) -> bytes:
    bucket, key = _bucket_and_key(uri)
    extra = {"Range": byte_range} if byte_range else {}
    try:
        return aws.client("s3").get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    except Exception as error:
        if _s3_missing(error):
            raise FileNotFoundError(uri) from error
        raise


def list_files(folder_uri: str, suffix: str, aws: AwsConfig | None = None) -> list[LandingFile]:
    """Every visible file below ``folder_uri`` whose name ends with ``suffix``, oldest first.

    A missing folder lists as empty: a source that has not delivered yet is not an error.
    """
    if folder_uri.startswith("s3://"):
        return sorted(_list_s3(folder_uri, suffix, aws or AwsConfig()))
    if is_remote(folder_uri):
        raise ValueError(f"cannot list {folder_uri}: landing zones are local folders or s3:// URIs")
    return sorted(
        _local_file(_recordable(entry.path), entry.stat())
        for relative, entry in _walk_local(folder_uri)
        if relative.endswith(suffix)
    )


class UnrecordableNameError(ValueError):
    """A local file's name is not UTF-8: no ledger, table or run config can hold it."""


def _recordable(path: str) -> str:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UnrecordableNameError(
            f"the file name {os.fsencode(path)!r} is not UTF-8 text: no table or ledger can record it; "
            "rename it (e.g. convmv -f latin1 -t utf8)"
        ) from None
    return path


def stat_files(uris: Iterable[str], aws: AwsConfig | None = None) -> tuple[list[LandingFile], list[str]]:
    """The named files as listed, and the names of those that do not exist."""
    found, missing = [], []
    for uri in uris:
        if uri.startswith("s3://"):
            landed = head_s3(uri, aws or AwsConfig())
            if landed is None:
                missing.append(uri)
            else:
                found.append(landed)
        else:
            try:
                found.append(_local_file(uri, os.stat(uri)))
            except FileNotFoundError:
                missing.append(uri)
    return sorted(found), missing


def read_bytes(uri: str, aws: AwsConfig | None = None) -> bytes:
    if uri.startswith("s3://"):
        return _get_s3(uri, aws or AwsConfig())
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def read_head(uri: str, size: int = 65536, aws: AwsConfig | None = None) -> bytes:
    if uri.startswith("s3://"):
        return _get_s3(uri, aws or AwsConfig(), byte_range=f"bytes=0-{size - 1}")
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_file(path) as handle:
        return handle.read(size)


def read_first_line(uri: str, aws: AwsConfig | None = None, size: int = 65536) -> bytes:
    """The file's bytes up to its first ``\n`` (included) or its end: the first ``size`` bytes,
    then twice as many, until they hold a line break or the whole file (a header longer than
    any first guess is still read whole, never cut inside a character)."""
    while True:
        head = read_head(uri, size, aws)
        if b"\n" in head or len(head) < size:
            return head
        size *= 2


class RowGroupWriter:
    """Writes tables to a Parquet file in row groups of at least ``min_rows`` rows (but the
    last): a batch of many small files would otherwise make as many tiny row groups."""

    def __init__(self, writer: pq.ParquetWriter, min_rows: int) -> None:
        self._writer, self._min_rows = writer, min_rows
        self._pending: list[pa.Table] = []
        self._rows = 0

    def write_table(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= self._min_rows:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
            self._pending, self._rows = [], 0


@contextmanager
def parquet_writer(
    uri: str, schema: pa.Schema, min_row_group_rows: int = 1 << 17
) -> Iterator[RowGroupWriter]:
    """A Parquet file written a table at a time. Only text columns are dictionary-encoded: the
    encoder's attempt on numbers and times (mostly distinct) costs a third of the write of a
    bronze batch and makes the file larger."""
    filesystem, path = _filesystem(uri)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    text = [
        field.name
        for field in schema
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
    ]
    with pq.ParquetWriter(path, schema, filesystem=filesystem, use_dictionary=text) as writer:
        buffered = RowGroupWriter(writer, min_row_group_rows)
        yield buffered
        buffered.flush()


class ParquetPerThread:
    """Parquet files under a folder, one per thread that writes (opened on its first write):
    threads that parse and write files side by side, each in its own file."""

    def __init__(self, folder: str, schema: pa.Schema, files: ExitStack) -> None:
        self._folder, self._schema, self._files = folder, schema, files
        self._writers: dict[int, RowGroupWriter] = {}
        self._lock = threading.Lock()

    def write_table(self, table: pa.Table) -> None:
        thread = threading.get_ident()
        with self._lock:
            writer = self._writers.get(thread)
            if writer is None:
                uri = f"{self._folder}/part-{len(self._writers):04d}.parquet"
                writer = self._writers[thread] = self._files.enter_context(parquet_writer(uri, self._schema))
        writer.write_table(table)


@contextmanager
def parquet_per_thread(folder: str, schema: pa.Schema) -> Iterator[ParquetPerThread]:
    """Files written by ``ParquetPerThread.write_table``, each complete when this exits."""
    with ExitStack() as files:
        yield ParquetPerThread(folder, schema, files)


def drop_parquet_columns(uri: str, columns: Sequence[str]) -> None:
    """Rewrite a Parquet file without ``columns``, a row group at a time (beside it, then moved
    over it)."""
    filesystem, path = _filesystem(uri)
    rewritten = f"{uri}.rewritten"
    with filesystem.open_input_file(path) as source_file:
        source = pq.ParquetFile(source_file)
        kept = pa.schema([field for field in source.schema_arrow if field.name not in set(columns)])
        with parquet_writer(rewritten, kept) as writer:
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group, columns=kept.names))
    move_file(rewritten, uri)


def list_parquet(folder_uri: str) -> list[str]:
    """The Parquet files in a folder and below it (hidden ones aside), sorted."""
    filesystem, path = _filesystem(folder_uri)
    selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    found = [
        info.path
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.path.endswith(".parquet")
        and not is_hidden(info.path[len(path) :])
    ]
    prefix = folder_uri[: len(folder_uri) - len(path)] if folder_uri.endswith(path) else ""
    return sorted(prefix + found_path for found_path in found)


def file_size(uri: str) -> int:
    filesystem, path = _filesystem(uri)
    return filesystem.get_file_info(path).size


def move_file(source_uri: str, target_uri: str) -> None:
    """Move a file (a rename locally; a copy and a delete on S3)."""
    filesystem, source = _filesystem(source_uri)
    _, target = _filesystem(target_uri)
    filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
    filesystem.move(source, target)


def delete_file(uri: str) -> None:
    filesystem, path = _filesystem(uri)
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        filesystem.delete_file(path)


def delete_tree(uri: str) -> None:
    filesystem, path = _filesystem(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        filesystem.delete_dir(path)


@dataclass(frozen=True)
class Removed:
    """What a sweep deleted: entries (folders or files) directly under its root, and their bytes."""

    entries: int = 0
    bytes: int = 0

    def __add__(self, other: Removed) -> Removed:
        return Removed(self.entries + other.entries, self.bytes + other.bytes)


def remove_stale_entries(root_uri: str, older_than: datetime) -> Removed:
    """Delete each folder (or file) directly under ``root_uri`` in which nothing was modified
    since ``older_than``: the scratch folders of writers that were killed before they cleaned up.
    A folder counts as modified when any file below it is, so a writer still filling its folder
    keeps it. A missing root removes nothing."""
    filesystem, root = _filesystem(root_uri)
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    newest: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for info in filesystem.get_file_info(selector):
        top = info.path[len(root) :].lstrip("/").split("/", 1)[0]
        # Object stores have no folder times: a folder there is as recent as its newest file.
        if info.mtime_ns is not None:
            newest[top] = max(newest.get(top, 0), info.mtime_ns)
        if info.type == pafs.FileType.File:
            sizes[top] = sizes.get(top, 0) + info.size
    cutoff_ns = int(older_than.timestamp() * 1e9)
    removed = Removed()
    for top in sorted(newest):
        if newest[top] >= cutoff_ns:
            continue
        path = f"{root.rstrip('/')}/{top}"
        if filesystem.get_file_info(path).type == pafs.FileType.Directory:
            filesystem.delete_dir(path)
        else:
            filesystem.delete_file(path)
        removed += Removed(1, sizes.get(top, 0))
    return removed
