"""Run a unit: in this process with a given session, or with a session of its own."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.units import unit_for
from lakehouse_dagster.units.base import TableUnit, UnitContext, UnitRequest, UnitResult


def execute(
    request: UnitRequest,
    spark: SparkSession,
    layout: LakeLayout,
    log: logging.Logger | None = None,
    thresholds: Thresholds | None = None,
    unit: TableUnit | None = None,
) -> UnitResult:
    """Run the unit of ``request.table`` (or ``unit``, a table outside the registry) on ``spark``."""
    unit = unit or unit_for(request.table)
    context = UnitContext(
        request=request,
        tables=DeltaTables(spark, layout),
        log=log or logging.getLogger(__name__),
        unit=unit,
        thresholds=thresholds if thresholds is not None else Thresholds.load(),
    )
    return unit.run(context)


def execute_standalone(
    request: UnitRequest, settings: LakehouseSettings, log: logging.Logger | None = None
) -> UnitResult:
    """Run with only the request and the deployment settings, as a separate process or a remote job does."""
    with spark_session(settings.engine) as spark:
        return execute(request, spark, settings.layout, log, settings.thresholds)
