"""Files of the landing zone and of staging: local folders or S3.

Listing follows the Spark/Hadoop convention: a file or folder whose name starts with ``_``
or ``.`` is hidden (writers' ``_temporary/`` and ``.staging/`` folders, ``_SUCCESS``
markers), so half-written copies are never picked up.

Every listed file carries a *fingerprint* that changes when the file is replaced: locally its
size, modification time, inode and change time (``utime`` cannot reset the change time); on
S3 its ETag.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakehouse_dagster.lake.layout import is_remote


@dataclass(frozen=True, order=True)
class LandingFile:
    """A file as listed. Its identity for exactly-once ingestion is ``uri``."""

    modified_at: datetime
    uri: str
    size: int
    fingerprint: str = ""


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


def _s3_client():
    import boto3

    return boto3.client("s3")


def _list_s3(folder_uri: str, suffix: str) -> list[LandingFile]:
    parsed = urlparse(folder_uri)
    prefix = parsed.path.lstrip("/").rstrip("/") + "/"
    found = []
    paginator = _s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=parsed.netloc, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith(suffix) and not is_hidden(key[len(prefix) :]):
                found.append(
                    LandingFile(
                        modified_at=item["LastModified"].astimezone(UTC),
                        uri=f"s3://{parsed.netloc}/{key}",
                        size=item["Size"],
                        fingerprint=item["ETag"].strip('"'),
                    )
                )
    return found


def list_files(folder_uri: str, suffix: str) -> list[LandingFile]:
    """Every visible file below ``folder_uri`` whose name ends with ``suffix``, oldest first.

    A missing folder lists as empty: a source that has not delivered yet is not an error.
    """
    if folder_uri.startswith("s3://"):
        return sorted(_list_s3(folder_uri, suffix))
    if is_remote(folder_uri):
        raise ValueError(f"cannot list {folder_uri}: landing zones are local folders or s3:// URIs")
    return sorted(
        _local_file(entry.path, entry.stat())
        for relative, entry in _walk_local(folder_uri)
        if relative.endswith(suffix)
    )


def stat_files(uris: Iterable[str]) -> tuple[list[LandingFile], list[str]]:
    """The named files as listed, and the names of those that do not exist."""
    found, missing = [], []
    for uri in uris:
        if uri.startswith("s3://"):
            parsed = urlparse(uri)
            from botocore.exceptions import ClientError

            try:
                head = _s3_client().head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    missing.append(uri)
                    continue
                raise
            found.append(
                LandingFile(
                    head["LastModified"].astimezone(UTC), uri, head["ContentLength"], head["ETag"].strip('"')
                )
            )
        else:
            try:
                found.append(_local_file(uri, os.stat(uri)))
            except FileNotFoundError:
                missing.append(uri)
    return sorted(found), missing


def read_bytes(uri: str) -> bytes:
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def read_head(uri: str, size: int = 65536) -> bytes:
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_file(path) as handle:
        return handle.read(size)


@contextmanager
def parquet_writer(uri: str, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A Parquet file written a table at a time."""
    filesystem, path = _filesystem(uri)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with pq.ParquetWriter(path, schema, filesystem=filesystem) as writer:
        yield writer


def delete_tree(uri: str) -> None:
    filesystem, path = _filesystem(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        filesystem.delete_dir(path)
