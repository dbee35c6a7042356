"""Run units in the Dagster step's process, on one engine session per run."""

from __future__ import annotations

import dagster as dg

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.resource import LakeResource
from lakehouse_dagster.ml.resource import MlflowResource
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.runners.base import UnitRunner
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster.units.run import run_unit


class InProcessRunner(UnitRunner):
    """Runs each unit here, on the run's session: the embedded engine starts once per run."""

    spark: SparkResource
    lake: LakeResource
    #: YAML file of quality thresholds (LAKEHOUSE_QUALITY_THRESHOLDS); the packaged one if unset.
    thresholds_file: str | None = None
    #: Where the units of models track runs and register versions (None: such units fail, saying so).
    mlflow: MlflowResource | None = None

    def run(self, context: dg.AssetExecutionContext, table: Table, request: UnitRequest) -> UnitResult:
        tables = DeltaTables(self.spark.get_session(), self.lake.layout())
        models = self.mlflow.settings() if self.mlflow is not None else None
        return run_unit(request, table, tables, Thresholds.load(self.thresholds_file), context.log, models)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.spark.close()
