"""Running a table's unit of work in tests, without Dagster."""

from __future__ import annotations

import logging
import shutil
from datetime import date

import deltalake

from lakehouse_dagster.declarations.maintenance import Maintenance
from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.deployment import Deployment, default_mlflow
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.registry import REGISTRY
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import PartitionWindow, UnitRequest
from lakehouse_dagster.units.run import run_unit

AS_OF = date(2026, 11, 26)


class UnitFailed(AssertionError):
    """A unit reported an error; the message is ``<kind>: <message>``."""

    def __init__(self, result: UnitResult) -> None:
        assert result.error is not None
        super().__init__(f"{result.error.kind}: {result.error.message}")
        self.result = result


def run_table(
    tables: DeltaTables,
    table: str | Table,
    *,
    as_of_date: date = AS_OF,
    partition: PartitionWindow | None = None,
    files: tuple[str, ...] | None = None,
    run_id: str = "test",
    thresholds: Thresholds | None = None,
    maintenance: Maintenance | None = None,
) -> UnitResult:
    """The unit's report (of the table's maintenance, when ``maintenance`` is given); raises
    ``UnitFailed`` if the unit failed."""
    declared = REGISTRY.table(table) if isinstance(table, str) else table
    request = UnitRequest(
        str(declared.name),
        as_of_date,
        run_id=run_id,
        partition=partition,
        files=files,
        maintenance=maintenance,
    )
    result = run_unit(
        request,
        declared,
        tables,
        thresholds if thresholds is not None else Thresholds.load(),
        logging.getLogger("t"),
        # The lake's own MLflow store, for the tables built by a model.
        default_mlflow(Deployment.TEST, tables.layout.root),
    )
    if result.error is not None:
        raise UnitFailed(result)
    return result


def as_an_earlier_release_wrote_it(tables: DeltaTables, name: TableName) -> None:
    """The partitioned table written again without its partition column, unpartitioned, as
    releases before its partitioning wrote it."""
    (column,) = deltalake.DeltaTable(tables.uri(name)).metadata().partition_columns
    rows = tables.read(name).drop(column)
    earlier = tables.spark.createDataFrame(rows.collect(), rows.schema)
    shutil.rmtree(tables.uri(name))
    tables.create(name, earlier)
