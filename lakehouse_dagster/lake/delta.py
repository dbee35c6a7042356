"""Delta tables by name: Spark reads and writes the data, ``deltalake`` reads the log.

Every write is a single Delta commit, so a failed write leaves the table as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import deltalake
from pyspark.sql import DataFrame, SparkSession

from lakehouse_dagster.lake.layout import LakeLayout, TableName


class TableNotFoundError(LookupError):
    def __init__(self, name: TableName, uri: str) -> None:
        super().__init__(f"table {name} does not exist yet at {uri}; materialise it first")
        self.name = name
        self.uri = uri


class SchemaMergeError(ValueError):
    pass


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool


class DeltaTables:
    """The lake's tables, addressed as ``layer.table``."""

    def __init__(self, spark: SparkSession, layout: LakeLayout) -> None:
        self.spark = spark
        self.layout = layout

    def uri(self, name: TableName) -> str:
        return self.layout.table_uri(name)

    def exists(self, name: TableName) -> bool:
        return deltalake.DeltaTable.is_deltatable(self.uri(name))

    def read(self, name: TableName) -> DataFrame:
        if not self.exists(name):
            raise TableNotFoundError(name, self.uri(name))
        return self.spark.read.format("delta").load(self.uri(name))

    def version(self, name: TableName) -> int | None:
        """The latest committed version, or None before the first write."""
        if not self.exists(name):
            return None
        return deltalake.DeltaTable(self.uri(name)).version()

    def columns(self, name: TableName) -> list[ColumnInfo]:
        return [
            ColumnInfo(field.name, field.dataType.simpleString(), field.nullable)
            for field in self.read(name).schema.fields
        ]

    def sql_ref(self, name: TableName) -> str:
        """How SQL names the table: by path, which survives engine restarts."""
        return f"delta.`{self.uri(name)}`"

    # Writes -----------------------------------------------------------------------------

    def append(self, name: TableName, frame: DataFrame, *, merge_schema: bool = False) -> None:
        writer = frame.write.format("delta").mode("append")
        if merge_schema:
            self._check_schema_can_grow(name, frame)
            writer = writer.option("mergeSchema", "true")
        writer.save(self.uri(name))
        self.register(name)

    def overwrite(self, name: TableName, frame: DataFrame, *, partition_by: Sequence[str] = ()) -> None:
        """Replace the whole table, schema included, in one commit."""
        writer = frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.uri(name))
        self.register(name)

    def replace_where(
        self, name: TableName, frame: DataFrame, predicate: str, *, partition_by: Sequence[str] = ()
    ) -> None:
        """Replace the rows matching ``predicate`` (a partition's date range) in one commit.
        The first write creates the table, partitioned by ``partition_by``."""
        if not self.exists(name):
            self.overwrite(name, frame, partition_by=partition_by)
            return
        frame.write.format("delta").mode("overwrite").option("replaceWhere", predicate).save(self.uri(name))
        self.register(name)

    def _check_schema_can_grow(self, name: TableName, frame: DataFrame) -> None:
        """Sail 0.7.2 silently drops new columns on a mergeSchema append to a table that has a
        non-nullable column. Refuse such a write rather than lose the columns' data."""
        if not self.exists(name):
            return
        fields = deltalake.DeltaTable(self.uri(name)).schema().fields
        new_columns = sorted(set(frame.columns) - {field.name for field in fields})
        required = [field.name for field in fields if not field.nullable]
        if new_columns and required:
            raise SchemaMergeError(
                f"{name}: cannot add column(s) {', '.join(new_columns)} because the table has non-nullable "
                f"column(s) {', '.join(required)}; the engine would drop the new columns' data"
            )

    def register(self, name: TableName) -> None:
        """With a catalog configured (Unity Catalog in production), register the table there as an
        external table over its path. Locally the tables are addressed by path only: Sail's
        catalog does not outlive the engine."""
        if not self.layout.catalog:
            return
        qualified = self.layout.catalog_name(name)
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {qualified.rsplit('.', 1)[0]}")
        self.spark.sql(f"CREATE TABLE IF NOT EXISTS {qualified} USING DELTA LOCATION '{self.uri(name)}'")
