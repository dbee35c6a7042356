"""The quarantines and the quality history as assets of their own.

``quarantine.<table>`` holds the rows a table's drop expectations kept out; ``ops.data_quality``
every table's expectation results. Neither is computed by a step of its own: the step of the
table that writes them reports them (``defs/report.py``), as a materialisation when it wrote
them and as an observation when it only looked. So they are external assets, downstream of
the tables they come from, with those tables' owners.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from lakehouse_dagster.declarations.column_docs import FRAMEWORK_COLUMN_DOCS, HISTORY_COLUMN_DOCS
from lakehouse_dagster.declarations.table import Domain, Registry, Table
from lakehouse_dagster.defs.assets import code_references
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.quality.expectations import Action
from lakehouse_dagster.quality.history import COLUMNS as HISTORY_COLUMNS
from lakehouse_dagster.quality.history import DATA_QUALITY
from lakehouse_dagster.quality.quarantine import quarantine_table

#: The group of the operational tables (the quality history).
OPS_GROUP = "ops"


def has_quarantine(table: Table) -> bool:
    return any(e.action is Action.DROP for e in table.expectations)


def quarantine_spec(domain: Domain, table: Table, layout: LakeLayout) -> dg.AssetSpec:
    name = quarantine_table(table.name)
    dropping = ", ".join(e.name for e in table.expectations if e.action is Action.DROP)
    return dg.AssetSpec(
        key=dg.AssetKey(name.key_path),
        deps=[dg.AssetKey(table.name.key_path)],
        description=f"The rows {table.name} keeps out by its drop expectations ({dropping}), each with "
        "the drop expectations it failed (_failed_expectations), the run and the time. Written by "
        f"{table.name}'s step: materialised when it writes them, observed when it does not.",
        group_name=domain.name,
        owners=list(table.owners),
        kinds={"delta"},
        tags={"lakehouse/layer": name.layer},
        metadata={
            "dagster/table_name": layout.catalog_name(name),
            "dagster/uri": dg.MetadataValue.path(layout.table_uri(name)),
            "dagster/code_references": code_references(table, first_only=True),
        },
    )


def data_quality_spec(resolved: list[tuple[Domain, Table]], layout: LakeLayout) -> dg.AssetSpec:
    owners = sorted({owner for _, table in resolved for owner in table.owners})
    return dg.AssetSpec(
        key=dg.AssetKey(DATA_QUALITY.key_path),
        deps=[dg.AssetKey(table.name.key_path) for _, table in resolved if table.expectations],
        description="Every table's expectation results: one record per expectation and materialisation "
        "(per day for a partitioned write), with the rows passed and failed, like the quality records "
        "of the Delta Live Tables event log. Appended by each table's step.",
        group_name=OPS_GROUP,
        owners=owners,
        kinds={"delta"},
        tags={"lakehouse/layer": DATA_QUALITY.layer},
        metadata={
            "dagster/table_name": layout.catalog_name(DATA_QUALITY),
            "dagster/uri": dg.MetadataValue.path(layout.table_uri(DATA_QUALITY)),
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(column, kind.lower(), description=HISTORY_COLUMN_DOCS[column])
                    for column, kind in HISTORY_COLUMNS
                ]
            ),
        },
    )


def related_docs(registry: Registry, table: Table) -> dict[str, Mapping[str, str]]:
    """The column docs of the tables a table's step reports besides its own: its quarantine (the
    rows it evaluates: its own columns, or those of what it reads, as they were read; the
    framework's bookkeeping columns mean there what they mean everywhere) and the quality
    history."""
    docs: dict[str, Mapping[str, str]] = {str(DATA_QUALITY): HISTORY_COLUMN_DOCS}
    if has_quarantine(table):
        read = (table.cdc.source,) if table.cdc is not None else table.inputs
        as_read = {}
        for name in read:
            as_read.update(registry.table(name).column_docs)
        docs[str(quarantine_table(table.name))] = {**table.column_docs, **as_read, **FRAMEWORK_COLUMN_DOCS}
    return docs
