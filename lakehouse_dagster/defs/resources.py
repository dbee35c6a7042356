"""Resources by deployment."""

from __future__ import annotations

from typing import Any

import dagster as dg

from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.lake.resource import LakeResource


def build_resources(settings: LakehouseSettings) -> dict[str, Any]:
    if settings.deployment is Deployment.PROD:
        # Read at run time, so the URL (it may carry a token) never shows in the UI.
        spark = SparkResource(mode="remote", remote_url=dg.EnvVar("LAKEHOUSE_SPARK_REMOTE"))
    elif settings.engine.remote_url:
        spark = SparkResource(mode="remote", remote_url=settings.engine.remote_url)
    else:
        spark = SparkResource(mode="embedded")
    return {"spark": spark, "lake": LakeResource.from_layout(settings.layout)}


def executor_for(settings: LakehouseSettings) -> dg.ExecutorDefinition:
    """Locally one process runs the whole run on one embedded engine: a process per step would
    re-import Spark and start a Sail server per asset (8.9 s against 3.3 s for two assets).
    In production the engine is remote, and steps may run side by side."""
    if settings.deployment is Deployment.PROD:
        return dg.multiprocess_executor
    return dg.in_process_executor
