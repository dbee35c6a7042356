"""Silver and gold tables registered in the Glue Data Catalog as Delta tables.

Each table becomes ``<database>.<layer>_<table>``: its location, its columns and partition
keys from the Delta log, and the parameters that tell engines it is a Delta table
(``table_type=DELTA`` for Athena, ``spark.sql.sources.provider=delta`` for Spark). A
registration is idempotent: the table is created, updated when its schema, partitioning,
protocol or description changed, and left alone otherwise (no new Glue table version).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.lake.snapshots import DeltaLog

#: The layers engines query by name: bronze is raw, quarantine and ops are the lake's own.
CATALOGED_LAYERS = ("silver", "gold")
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
_PRIMITIVES = {
    "string": "string",
    "long": "bigint",
    "integer": "int",
    "short": "smallint",
    "byte": "tinyint",
    "float": "float",
    "double": "double",
    "boolean": "boolean",
    "binary": "binary",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
}


def glue_table_name(name: TableName) -> str:
    """``silver.customers`` -> ``silver_customers`` (layer names hold no underscore)."""
    return f"{name.layer}_{name.table}"


def hive_type(delta_type: str | Mapping[str, Any]) -> str:
    """A Delta schema type (its JSON form) as Glue and Hive spell it."""
    if isinstance(delta_type, str):
        if delta_type.startswith("decimal"):
            return delta_type.replace(" ", "")
        if delta_type not in _PRIMITIVES:
            raise ValueError(f"unknown Delta type {delta_type!r}")
        return _PRIMITIVES[delta_type]
    kind = delta_type["type"]
    if kind == "array":
        return f"array<{hive_type(delta_type['elementType'])}>"
    if kind == "map":
        return f"map<{hive_type(delta_type['keyType'])},{hive_type(delta_type['valueType'])}>"
    if kind == "struct":
        fields = ",".join(f"{f['name']}:{hive_type(f['type'])}" for f in delta_type["fields"])
        return f"struct<{fields}>"
    raise ValueError(f"unknown Delta type {delta_type!r}")


def table_input(
    name: TableName,
    uri: str,
    log: DeltaLog,
    description: str = "",
    column_docs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Glue ``TableInput`` of a Delta table."""
    docs = column_docs or {}

    def column(field_name: str, delta_type: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"Name": field_name, "Type": hive_type(delta_type)}
        if docs.get(field_name):
            entry["Comment"] = docs[field_name][:255]
        return entry

    types = dict(log.fields)
    location = uri.rstrip("/")
    return {
        "Name": glue_table_name(name),
        "Description": description[:2048],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "EXTERNAL": "TRUE",
            "table_type": "DELTA",
            "classification": "delta",
            "spark.sql.sources.provider": "delta",
            "delta.minReaderVersion": str(log.min_reader_version),
            "delta.minWriterVersion": str(log.min_writer_version),
            "lakehouse.table": str(name),
            **dict(log.configuration),
        },
        "StorageDescriptor": {
            "Columns": [column(n, t) for n, t in log.fields if n not in log.partition_columns],
            "Location": location,
            "InputFormat": PARQUET_INPUT,
            "OutputFormat": PARQUET_OUTPUT,
            "SerdeInfo": {
                "SerializationLibrary": PARQUET_SERDE,
                "Parameters": {"serialization.format": "1", "path": location},
            },
        },
        "PartitionKeys": [column(n, types[n]) for n in log.partition_columns],
    }


def _comparable(table: Mapping[str, Any], parameters: set[str]) -> dict[str, Any]:
    """The parts of a Glue table that a registration sets (Glue adds fields of its own)."""
    storage = table.get("StorageDescriptor", {})
    serde = storage.get("SerdeInfo", {})
    return {
        "Description": table.get("Description", ""),
        "TableType": table.get("TableType"),
        "Parameters": {k: v for k, v in table.get("Parameters", {}).items() if k in parameters},
        "Columns": _without_case(storage.get("Columns", [])),
        "Location": storage.get("Location"),
        "InputFormat": storage.get("InputFormat"),
        "OutputFormat": storage.get("OutputFormat"),
        "Serde": (serde.get("SerializationLibrary"), serde.get("Parameters", {})),
        "PartitionKeys": _without_case(table.get("PartitionKeys", [])),
    }


def _without_case(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Columns with lower-case names: Glue may keep a column's name in lower case."""
    return [{**column, "Name": column.get("Name", "").lower()} for column in columns]


class GlueCatalog(dg.ConfigurableResource):
    """Registers silver and gold tables in the Glue database ``database`` (LAKEHOUSE_GLUE_DATABASE)
    after each materialisation. Without a database (locally, where tables are addressed by
    path) nothing is registered."""

    database: str | None = None
    region_name: str | None = None
    #: Tests point the client at a moto server.
    endpoint_url: str | None = None

    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("glue", region_name=self.region_name, endpoint_url=self.endpoint_url)
        return self._client

    def register(
        self, name: TableName, uri: str, description: str = "", column_docs: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Create or update the table's entry; return metadata for the materialisation."""
        if self.database is None or name.layer not in CATALOGED_LAYERS:
            return {}
        wanted = table_input(name, uri, DeltaLog.read(uri), description, column_docs)
        client = self.client()
        glue_name = f"{self.database}.{wanted['Name']}"
        try:
            current = client.get_table(DatabaseName=self.database, Name=wanted["Name"])["Table"]
        except client.exceptions.EntityNotFoundException:
            try:
                client.create_table(DatabaseName=self.database, TableInput=wanted)
                action = "created"
            except client.exceptions.AlreadyExistsException:  # another run created it just now
                current = client.get_table(DatabaseName=self.database, Name=wanted["Name"])["Table"]
                action = self._update(current, wanted)
        else:
            action = self._update(current, wanted)
        return {"lakehouse/glue_table": glue_name, "lakehouse/glue_registration": action}

    def _update(self, current: Mapping[str, Any], wanted: dict[str, Any]) -> str:
        # Ours: the parameters we set, and any Delta property (one the log no longer has goes).
        owned = set(wanted["Parameters"]) | {
            k for k in current.get("Parameters", {}) if k.startswith("delta.")
        }
        if _comparable(current, owned) == _comparable(wanted, owned):
            return "unchanged"
        # Keep the parameters others set (Athena, Lake Formation); ours win, and Delta properties
        # no longer in the log go.
        kept = {k: v for k, v in current.get("Parameters", {}).items() if not k.startswith("delta.")}
        merged = {**wanted, "Parameters": {**kept, **wanted["Parameters"]}}
        self.client().update_table(DatabaseName=self.database, TableInput=merged)
        return "updated"
