"""File access for the landing zone and staging, local or S3, through ``pyarrow.fs``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakehouse_dagster.lake.layout import is_remote


@dataclass(frozen=True, order=True)
class LandingFile:
    """A file as listed: its identity for exactly-once ingestion is ``uri``."""

    modified_at: datetime
    uri: str
    size: int


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if is_remote(uri):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri


def _to_uri(uri_prefix_of_root: str, path: str) -> str:
    return f"{uri_prefix_of_root}{path}" if uri_prefix_of_root else path


def list_files(folder_uri: str, suffix: str) -> list[LandingFile]:
    """Every file below ``folder_uri`` whose name ends with ``suffix``, oldest first.

    A missing folder lists as empty: a source that has not delivered yet is not an error.
    """
    filesystem, path = _filesystem(folder_uri)
    scheme = folder_uri.split("://", 1)[0] + "://" if is_remote(folder_uri) else ""
    selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    files = [
        LandingFile(
            modified_at=info.mtime.astimezone(UTC) if info.mtime else datetime.fromtimestamp(0, UTC),
            uri=_to_uri(scheme, info.path),
            size=info.size or 0,
        )
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
        and info.base_name.endswith(suffix)
        and not info.base_name.startswith((".", "_"))
    ]
    return sorted(files)


def read_bytes(uri: str) -> bytes:
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def read_head(uri: str, size: int = 65536) -> bytes:
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_file(path) as handle:
        return handle.read(size)


def write_parquet(table: pa.Table, uri: str) -> None:
    filesystem, path = _filesystem(uri)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(table, path, filesystem=filesystem)


def delete_tree(uri: str) -> None:
    filesystem, path = _filesystem(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        filesystem.delete_dir(path)
