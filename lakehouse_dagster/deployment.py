"""Deployment settings: the one place that reads the environment.

The deployment is chosen by ``LAKEHOUSE_DEPLOYMENT`` (``local``, ``test`` or ``prod``).
Every environment variable the package reads is declared in ``ENVIRONMENT_VARIABLES``;
a test fails if code reads a variable that is not declared here, and the Terraform
wiring test checks that every production variable is produced by an output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.layout import LakeLayout, join_uri, normalize_root
from lakehouse_dagster.quality.thresholds import Thresholds, ThresholdsError


class Deployment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PROD = "prod"


class SettingsError(ValueError):
    """A deployment setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class EnvironmentVariable:
    name: str
    description: str
    required_in: frozenset[Deployment] = frozenset()
    #: Declared for a component that is not built yet; read by no code today.
    planned_for: str | None = None
    secret: bool = False


_ALL = frozenset(Deployment)
_PROD = frozenset({Deployment.PROD})

ENVIRONMENT_VARIABLES: tuple[EnvironmentVariable, ...] = (
    EnvironmentVariable("LAKEHOUSE_DEPLOYMENT", "local (default), test or prod."),
    EnvironmentVariable(
        "LAKEHOUSE_ROOT",
        "Lake root: tables live at <root>/<layer>/<table>. Default ./.lakehouse locally.",
        required_in=frozenset({Deployment.TEST, Deployment.PROD}),
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ROOT_BRONZE", "Optional root for the bronze layer (default <root>/bronze)."
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ROOT_SILVER", "Optional root for the silver layer (default <root>/silver)."
    ),
    EnvironmentVariable("LAKEHOUSE_ROOT_GOLD", "Optional root for the gold layer (default <root>/gold)."),
    EnvironmentVariable(
        "LAKEHOUSE_LANDING",
        "Landing zone that sources write files to. Default <root>/landing locally.",
        required_in=_PROD,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_SPARK_REMOTE",
        "Spark Connect URL (sc://host:port). Unset locally: an embedded Sail server is started.",
        required_in=_PROD,
        secret=True,  # a production URL carries a token
    ),
    EnvironmentVariable(
        "LAKEHOUSE_CATALOG",
        "Unity Catalog catalog; when set, tables are also registered as <catalog>.<layer>.<table>.",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_AS_OF_DATE", "Optional fixed as-of date (YYYY-MM-DD) for reproducible runs."
    ),
    EnvironmentVariable(
        "LAKEHOUSE_QUALITY_THRESHOLDS",
        "Optional YAML file of per-table quality thresholds (default: quality/thresholds.yaml).",
    ),
    EnvironmentVariable(
        "AWS_REGION", "AWS region of the lake buckets (read by the AWS SDKs).", required_in=_PROD
    ),
    EnvironmentVariable(
        "AWS_ROLE_ARN", "IAM role the Dagster deployment assumes (read by the AWS SDKs).", required_in=_PROD
    ),
    # Production settings of components that later issues build. Declared now so that the
    # Terraform outputs and the deployment agree on one set of names.
    EnvironmentVariable(
        "LAKEHOUSE_EVENTS_QUEUE_URL",
        "SQS queue fed by the EventBridge 'Object Created' rule.",
        planned_for="S3/EventBridge sensor",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_KINESIS_STREAM", "Kinesis stream of events.", planned_for="Kinesis ingestion"
    ),
    EnvironmentVariable(
        "DATABRICKS_HOST", "Databricks workspace URL.", planned_for="Databricks Pipes engine"
    ),
    EnvironmentVariable(
        "DATABRICKS_TOKEN",
        "Databricks token (from a secret store).",
        planned_for="Databricks Pipes engine",
        secret=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID",
        "Cluster policy for job clusters submitted through Pipes.",
        planned_for="Databricks Pipes engine",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN",
        "Instance profile of those job clusters.",
        planned_for="Databricks Pipes engine",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_GLUE_DATABASE", "Glue database of the lake.", planned_for="warehouse serving"
    ),
    EnvironmentVariable(
        "LAKEHOUSE_WAREHOUSE_WORKGROUP",
        "Redshift Serverless workgroup for BI.",
        planned_for="warehouse serving",
    ),
)


def declared_variable_names() -> set[str]:
    return {variable.name for variable in ENVIRONMENT_VARIABLES}


LOCAL_DEFAULT_ROOT = "./.lakehouse"
_LAYER_ROOT_VARIABLES = {
    "bronze": "LAKEHOUSE_ROOT_BRONZE",
    "silver": "LAKEHOUSE_ROOT_SILVER",
    "gold": "LAKEHOUSE_ROOT_GOLD",
}


@dataclass(frozen=True)
class LakehouseSettings:
    """Everything a deployment decides, resolved from the environment once."""

    deployment: Deployment
    layout: LakeLayout
    engine: EngineSettings
    as_of_date: date | None = None
    thresholds: Thresholds = field(default_factory=Thresholds.load)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LakehouseSettings:
        env = os.environ if env is None else env

        def value(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        raw_deployment = value("LAKEHOUSE_DEPLOYMENT") or Deployment.LOCAL.value
        try:
            deployment = Deployment(raw_deployment)
        except ValueError:
            choices = ", ".join(d.value for d in Deployment)
            raise SettingsError(
                f"LAKEHOUSE_DEPLOYMENT={raw_deployment!r}: expected one of {choices}"
            ) from None

        missing = [
            variable.name
            for variable in ENVIRONMENT_VARIABLES
            if deployment in variable.required_in and value(variable.name) is None
        ]
        if missing:
            raise SettingsError(
                f"deployment {deployment.value!r} needs environment variable(s): {', '.join(missing)}"
            )

        root = normalize_root(value("LAKEHOUSE_ROOT") or LOCAL_DEFAULT_ROOT)
        landing = value("LAKEHOUSE_LANDING")
        layer_roots = {
            layer: normalize_root(uri)
            for layer, variable in _LAYER_ROOT_VARIABLES.items()
            if (uri := value(variable)) is not None
        }
        layout = LakeLayout(
            root=root,
            landing=normalize_root(landing) if landing else join_uri(root, "landing"),
            layer_roots=layer_roots,
            catalog=value("LAKEHOUSE_CATALOG"),
        )
        try:
            engine = EngineSettings(remote_url=value("LAKEHOUSE_SPARK_REMOTE"))
        except ValueError as error:
            raise SettingsError(f"LAKEHOUSE_SPARK_REMOTE: {error}") from None
        try:
            thresholds = Thresholds.load(value("LAKEHOUSE_QUALITY_THRESHOLDS"))
        except ThresholdsError as error:
            raise SettingsError(f"LAKEHOUSE_QUALITY_THRESHOLDS: {error}") from None
        return cls(
            deployment=deployment,
            layout=layout,
            engine=engine,
            as_of_date=_parse_as_of(value),
            thresholds=thresholds,
        )


def _parse_as_of(value: Callable[[str], str | None]) -> date | None:
    raw = value("LAKEHOUSE_AS_OF_DATE")
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"LAKEHOUSE_AS_OF_DATE={raw!r}: expected a date like 2026-11-26") from None
