"""What feeds a bronze table: files landing in a folder of the landing zone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

from lakehouse_dagster.declarations.names import enum_value
from lakehouse_dagster.ingest.csv_files import SOURCE_ROW
from lakehouse_dagster.ingest.typing import arrow_type
from lakehouse_dagster.quality.checks import CheckSpec, Severity
from lakehouse_dagster.quality.expectations import Action, Expectation

SOURCE_FILE = "_source_file"
SOURCE_FILE_MODIFIED_AT = "_source_file_modified_at"
INGESTED_AT = "_ingested_at"
BATCH_ID = "_batch_id"
RESCUED_DATA = "_rescued_data"
#: The columns bronze adds to every row, in this order after the data columns.
METADATA_COLUMNS = (SOURCE_FILE, SOURCE_FILE_MODIFIED_AT, SOURCE_ROW, INGESTED_AT, BATCH_ID, RESCUED_DATA)


class SchemaEvolutionMode(StrEnum):
    """What happens to a column that a file has and the table does not (Auto Loader's modes)."""

    ADD_NEW_COLUMNS = "addNewColumns"
    RESCUE = "rescue"
    FAIL_ON_NEW_COLUMNS = "failOnNewColumns"


#: Expected by every bronze table fed by files (first among its expectations).
NO_RESCUED_DATA = Expectation(
    "no_rescued_data", f"{RESCUED_DATA} IS NULL", Action.WARN, "every value fitted its column and line"
)
#: Reported by every bronze table fed by files. An error (the rows of a file that cannot be parsed
#: are missing until it is replaced), which does not block: the other files' rows go on downstream.
REJECTED_FILES_CHECK = CheckSpec(
    "no_rejected_files",
    "Every file landed since the last run could be parsed (a rejected file is retried once replaced).",
    Severity.ERROR,
    blocks=False,
)


@dataclass(frozen=True)
class FileSource:
    """CSV files landing under ``<landing>/<folder>`` (any depth; hidden paths excluded)."""

    folder: str
    #: The expected columns, in order; columns beyond them are new.
    columns: tuple[str, ...] = ()
    #: Schema hints: column -> Spark SQL type. Values that do not parse as the type are rescued.
    column_types: Mapping[str, str] = field(default_factory=dict)
    #: Columns every file must have (keys, say): a file without one fails the run, naming both.
    required_columns: tuple[str, ...] = ()
    suffix: str = ".csv"
    schema_evolution: SchemaEvolutionMode = SchemaEvolutionMode.ADD_NEW_COLUMNS
    max_files_per_batch: int = 10_000
    max_bytes_per_batch: int = 1 << 30

    def __post_init__(self) -> None:
        folder = PurePosixPath(self.folder)
        if not self.folder.strip() or folder.is_absolute() or ".." in folder.parts or "\\" in self.folder:
            raise ValueError(
                f"FileSource folder {self.folder!r}: expected a folder of the landing zone, relative and "
                "without '..' (customers, dms/sales/orders)"
            )
        where = f"FileSource({self.folder})"
        for column, sql_type in self.column_types.items():
            try:
                arrow_type(sql_type)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{where}.column_types[{column!r}]: {error}") from None
        mode = enum_value(SchemaEvolutionMode, self.schema_evolution, f"{where}.schema_evolution=")
        object.__setattr__(self, "schema_evolution", mode)
        for setting in ("max_files_per_batch", "max_bytes_per_batch"):
            if not isinstance(getattr(self, setting), int) or getattr(self, setting) < 1:
                raise ValueError(f"{where}.{setting}={getattr(self, setting)!r}: expected a positive integer")
