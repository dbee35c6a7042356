"""Run each unit as a one-time Databricks job run, through Dagster Pipes (the production runner).

The step submits a ``python_wheel_task`` that runs the project's wheel (``lakehouse-pipes-unit``,
``units/pipes_entry.py``) on a new job cluster, on serverless compute or on a running cluster.
The unit travels in the Pipes extras; its JSON report comes back as a Pipes custom message and
becomes Dagster events in ``defs/report.py``, as for every runner. A failed Databricks run fails
the step with the remote error and the run's URL; terminating the Dagster run cancels the
Databricks run.

The Databricks SDK and dagster-databricks load on the first run (``databricks_pipes.py``), not
when the code location loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import dagster as dg

from lakehouse_dagster.declarations.table import DEFAULT_REGISTRY, Table
from lakehouse_dagster.lake.resource import LakeResource
from lakehouse_dagster.runners.base import UnitRunner
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient


class DatabricksWorkspace(dg.ConfigurableResource):
    """The Databricks workspace seam: a ``databricks-sdk`` client of the workspace at ``host``.

    Credentials never sit in config: the SDK reads them from the environment
    (``DATABRICKS_CLIENT_ID`` and ``DATABRICKS_CLIENT_SECRET``, or ``DATABRICKS_TOKEN``). Tests
    point ``host`` at a fake workspace on 127.0.0.1."""

    host: str

    def client(self) -> WorkspaceClient:
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(host=self.host)


class JobCluster(dg.Config):
    """The new cluster a unit runs on (``LAKEHOUSE_DATABRICKS_*``)."""

    spark_version: str
    node_type: str
    min_workers: int = 1
    max_workers: int = 2
    policy_id: str | None = None
    instance_profile_arn: str | None = None
    tags: dict[str, str] = {}


class DatabricksRunner(UnitRunner):
    """Runs each unit as a Databricks job run through Pipes."""

    workspace: DatabricksWorkspace
    lake: LakeResource
    #: YAML file of quality thresholds (LAKEHOUSE_QUALITY_THRESHOLDS); read here, sent to the cluster.
    thresholds_file: str | None = None
    #: The registry the cluster finds the table in, as ``module:attribute`` (it must be in the wheel).
    registry: str = DEFAULT_REGISTRY
    #: Folder of the project's wheel in the workspace; the file is named after the installed version.
    artifacts: str
    compute: Literal["job_cluster", "serverless", "existing_cluster"] = "job_cluster"
    #: Where Pipes exchanges files with the cluster (serverless: always the volume).
    channel: Literal["volume", "dbfs"] = "volume"
    volume: str | None = None
    job_cluster: JobCluster | None = None
    cluster_id: str | None = None
    serverless_environment: str = "3"
    #: How often the Databricks run's state is polled.
    poll_interval_seconds: float = 5.0
    #: How often the Pipes message chunks are looked for while the run is going.
    messages_interval_seconds: float = 10.0
    timeout_seconds: int = 6 * 3600

    def run(self, context: dg.AssetExecutionContext, table: Table, request: UnitRequest) -> UnitResult:
        from lakehouse_dagster.runners.databricks_pipes import run_on_databricks

        return run_on_databricks(self, context, table, request)
