"""Settings of the Databricks runner, free of Dagster and of the Databricks SDK
(``deployment.py`` reads them from the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class DatabricksCompute(StrEnum):
    """Where a unit's Databricks task runs."""

    JOB_CLUSTER = "job_cluster"  # a new cluster per unit, under the cluster policy
    SERVERLESS = "serverless"  # serverless jobs compute
    EXISTING_CLUSTER = "existing_cluster"  # an all-purpose cluster that is already running


class PipesChannel(StrEnum):
    """Where Pipes writes the context and the messages: a Unity Catalog volume, or DBFS (off in
    workspaces with "Disable legacy features"). Serverless always uses the volume."""

    VOLUME = "volume"
    DBFS = "dbfs"


@dataclass(frozen=True)
class JobClusterSettings:
    """The new job cluster each unit runs on."""

    spark_version: str
    node_type: str
    min_workers: int = 1
    max_workers: int = 2
    policy_id: str | None = None
    instance_profile_arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabricksSettings:
    """How units run on Databricks."""

    host: str
    #: Folder (a Unity Catalog volume, or /Workspace/...) holding the project's wheel.
    artifacts: str
    compute: DatabricksCompute = DatabricksCompute.JOB_CLUSTER
    channel: PipesChannel = PipesChannel.VOLUME
    #: Unity Catalog volume of the Pipes channel, as /Volumes/<catalog>/<schema>/<volume>.
    volume: str | None = None
    job_cluster: JobClusterSettings | None = None
    cluster_id: str | None = None
    #: Environment version of serverless jobs compute (its Python and base libraries).
    serverless_environment: str = "3"
    #: How often the run's state is polled, and its Pipes messages looked for while it runs
    #: (not deployment settings: each poll is an API call; tests poll a fake faster).
    poll_interval_seconds: float = 5.0
    messages_interval_seconds: float = 10.0


def wheel_name(version: str) -> str:
    """The file name ``pip wheel`` gives the project's wheel (``make wheel``)."""
    return f"lakehouse_dagster-{version}-py3-none-any.whl"
