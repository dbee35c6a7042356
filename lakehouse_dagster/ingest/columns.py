"""How the columns of landed files map onto a bronze table: schema evolution and rescue."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.ingest.csv_files import MALFORMED_ROW, UnreadableFileError, read_header
from lakehouse_dagster.ingest.ledger import ledger_table
from lakehouse_dagster.ingest.sources import METADATA_COLUMNS, FileSource, SchemaEvolutionMode
from lakehouse_dagster.ingest.typing import same_type
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName

#: A new column must be a plain identifier; other names are rescued.
_COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class VanishedFileError(UnreadableFileError):
    """The file was gone between its listing and its reading: tried again when listed again."""


#: A file's header, ``[]`` for an empty file, or why it cannot be read.
Header = list[str] | UnreadableFileError


class SchemaEvolutionError(ValueError):
    """A file brings columns the table does not have, and the mode is failOnNewColumns."""


class DeclaredTypeError(ValueError):
    """A column's declared type (its schema hint, or text without one) is not the table's."""


class MissingColumnError(ValueError):
    """A file lacks a column its source requires (a key, say); nothing was ingested."""


@dataclass(frozen=True)
class ColumnPlan:
    """How the columns of every file map onto the table."""

    table_columns: list[str]
    new_columns: list[str]
    #: file uri -> header column -> table column, or None where the column is rescued
    by_file: dict[str, dict[str, str | None]]
    #: Declared columns an existing table lacks (a declaration changed): added by any batch.
    declared_new: list[str] = field(default_factory=list)

    def for_files(self, uris: Iterable[str]) -> ColumnPlan:
        """The plan of a batch of these files: of the new columns, those a file of theirs
        brings (a batch adds the columns of its own files, not of another batch's)."""
        mappings = {uri: self.by_file[uri] for uri in uris if uri in self.by_file}
        brought = {column for mapping in mappings.values() for column in mapping.values() if column}
        unbrought = set(self.new_columns) - brought
        return ColumnPlan(
            [c for c in self.table_columns if c not in unbrought],
            [c for c in self.new_columns if c not in unbrought],
            mappings,
            self.declared_new,
        )


def read_headers(
    landed_files: Sequence[files.LandingFile], aws: AwsConfig | None = None
) -> dict[str, Header]:
    headers: dict[str, Header] = {}
    for landed in landed_files:
        if landed.size == 0:
            headers[landed.uri] = []
            continue
        try:
            headers[landed.uri] = _header(landed, aws)
        except UnreadableFileError as error:
            headers[landed.uri] = error
        except FileNotFoundError:
            headers[landed.uri] = VanishedFileError("the file vanished before it was read")
    return headers


def _header(landed: files.LandingFile, aws: AwsConfig | None) -> list[str]:
    """The file's header; ``[]`` for a file of nothing but whitespace (a line break, a BOM), as
    for a file of no bytes. A blank first line before other lines is no header: rejected."""
    first = files.read_first_line(landed.uri, aws=aws)
    try:
        return read_header(first)
    except UnreadableFileError:
        if _blank(first.split(b"\n", 1)[0]) and _blank(files.read_bytes(landed.uri, aws)):
            return []
        raise


def _blank(data: bytes) -> bool:
    return not data.decode("utf-8-sig", errors="replace").strip()


def can_be_column(name: str) -> bool:
    """A plain identifier that is not one of bronze's own columns. Other names (a metadata
    column's, or one with spaces, dots or backticks) are rescued, never made columns."""
    return bool(_COLUMN_NAME.match(name)) and name not in METADATA_COLUMNS and name != MALFORMED_ROW


def plan_columns(
    tables: DeltaTables, source: FileSource, target: TableName, headers: Mapping[str, Header]
) -> ColumnPlan:
    """Map every readable file's header onto the table; raise, naming the file, for a missing
    required column or (in failOnNewColumns mode) a new one."""
    readable = {uri: header for uri, header in headers.items() if isinstance(header, list) and header}
    for uri, header in readable.items():
        missing = [column for column in source.required_columns if column not in header]
        if missing:
            raise MissingColumnError(
                f"{target}: file {uri} has no column(s) {', '.join(missing)}, which every file of "
                f"{source.folder} must have; nothing was ingested"
            )
    stored = (
        {c.name: c.type for c in tables.columns(target) if c.name not in METADATA_COLUMNS}
        if tables.exists(target)
        else {}
    )
    _check_declared_types(target, source, stored)
    existing = list(stored)
    declared_new = [c for c in source.columns if c not in existing]
    table_columns = existing + declared_new
    if not table_columns and readable:
        # The first header's columns, but those differing only in case from an earlier one (rescued).
        seen: set[str] = set()
        for column in next(iter(readable.values())):
            if can_be_column(column) and column.lower() not in seen:
                table_columns.append(column)
                seen.add(column.lower())
    by_lower = {c.lower(): c for c in table_columns}
    new_columns: list[str] = []
    refused: dict[str, list[str]] = {}
    by_file: dict[str, dict[str, str | None]] = {}
    for uri, header in readable.items():
        mapping: dict[str, str | None] = {}
        for column in header:
            if column in table_columns:
                mapping[column] = column
            elif column.lower() in by_lower or not can_be_column(column):
                mapping[column] = None
            elif source.schema_evolution is SchemaEvolutionMode.FAIL_ON_NEW_COLUMNS:
                refused.setdefault(uri, []).append(column)
            elif source.schema_evolution is SchemaEvolutionMode.RESCUE:
                mapping[column] = None
            else:
                new_columns.append(column)
                table_columns.append(column)
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
    return ColumnPlan(table_columns, new_columns, by_file, declared_new if existing else [])


def _check_declared_types(target: TableName, source: FileSource, stored: Mapping[str, str]) -> None:
    """A bronze column keeps the type it was created with. A hint changed or removed since would
    have each batch cast into the stored type: text rewritten silently (``007`` kept as ``7``), or
    the write failing on a cast that names nothing."""
    for column, stored_type in stored.items():
        declared = source.column_types.get(column, "STRING")
        if not same_type(declared, stored_type):
            raise DeclaredTypeError(
                f"{target}: column {column} is declared {declared} (schema hint of {source.folder}) "
                f"but the table stores it as {stored_type}; a bronze column keeps its type. Declare "
                f"{stored_type} again, or move {target} and {ledger_table(target)} aside to ingest the "
                "landing anew; nothing was ingested"
            )
