"""Deployment settings: the one place that reads or writes the environment.

The deployment is chosen by ``LAKEHOUSE_DEPLOYMENT`` (``local``, ``test`` or ``prod``).
Every environment variable the package reads or writes is declared in
``ENVIRONMENT_VARIABLES``; a test fails if any other module touches the environment, or if
this one touches an undeclared variable, and the Terraform wiring test checks that every
production variable is produced by an output.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.engine.settings import EngineMode, EngineSettings
from lakehouse_dagster.lake.layout import (
    LANDING_AREA,
    STAGING_AREA,
    STAGING_FOLDER,
    LakeLayout,
    OverlappingRootsError,
    UnsafeRootError,
    check_root,
    is_remote,
    join_uri,
    normalize_root,
)
from lakehouse_dagster.ml.settings import (
    DATABRICKS_EXPERIMENT,
    DATABRICKS_TRACKING,
    DEFAULT_EXPERIMENT,
    MlflowSettings,
)
from lakehouse_dagster.ml.settings import LOCAL_FOLDER as LOCAL_MLFLOW_FOLDER
from lakehouse_dagster.quality.thresholds import Thresholds, ThresholdsError
from lakehouse_dagster.runners.settings import (
    DatabricksCompute,
    DatabricksSettings,
    JobClusterSettings,
    PipesChannel,
)

_LOG = logging.getLogger(__name__)


class Deployment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PROD = "prod"


class UnitRunnerKind(StrEnum):
    """Where a unit of work runs."""

    IN_PROCESS = "in_process"
    SUBPROCESS = "subprocess"
    DATABRICKS = "databricks"


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
    #: The production deployment gets it from a Terraform output (infra/dagster_env.tf), possibly
    #: empty where it is optional.
    terraform: bool = False


_PROD = frozenset({Deployment.PROD})

ENVIRONMENT_VARIABLES: tuple[EnvironmentVariable, ...] = (
    EnvironmentVariable("LAKEHOUSE_DEPLOYMENT", "local (default), test or prod."),
    EnvironmentVariable(
        "LAKEHOUSE_ROOT",
        "Lake root: tables live at <root>/<layer>/<table>. Default ./.lakehouse locally.",
        required_in=frozenset({Deployment.TEST, Deployment.PROD}),
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ROOT_BRONZE",
        "Optional root for the bronze layer (default <root>/bronze).",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ROOT_SILVER",
        "Optional root for the silver layer (default <root>/silver).",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ROOT_GOLD", "Optional root for the gold layer (default <root>/gold).", terraform=True
    ),
    EnvironmentVariable(
        "LAKEHOUSE_LANDING",
        "Landing zone that sources write files to. Default <root>/landing locally.",
        required_in=_PROD,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_SPARK_REMOTE",
        "Spark Connect URL (sc://host:port) of the in_process and subprocess runners. Unset locally: "
        "an embedded Sail server is started. Required in prod with those runners.",
        secret=True,  # a production URL carries a token
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ENGINE",
        "embedded (Sail in process), remote (a Spark Connect URL) or classic_delta (open-source Spark "
        "with delta-spark); default remote when LAKEHOUSE_SPARK_REMOTE is set, else embedded.",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_SPARK_MASTER", "Spark master of the classic_delta engine (default local[*])."
    ),
    EnvironmentVariable(
        "LAKEHOUSE_CATALOG",
        "Unity Catalog catalog; when set, tables are also registered as <catalog>.<layer>.<table>.",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_AS_OF_DATE", "Optional fixed as-of date (YYYY-MM-DD) for reproducible runs."
    ),
    EnvironmentVariable(
        "LAKEHOUSE_PARTITIONS_START",
        "Optional first day (YYYY-MM-DD) of every daily partitioning, instead of the one each declares.",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_QUALITY_THRESHOLDS",
        "Optional YAML file of per-table quality thresholds (default: quality/thresholds.yaml).",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_UNIT_RUNNER",
        "Where units of work run: databricks (default in prod: a Databricks job run through Dagster Pipes), "
        "in_process (default elsewhere) or subprocess (one process per table).",
        terraform=True,
    ),
    EnvironmentVariable(
        "RUST_LOG",
        "Log filter of the embedded engine; set to warnings and errors when unset.",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_WAREHOUSE_URL",
        "PostgreSQL URL of the warehouse (local, test). Default locally: the project-local server "
        "of `make warehouse` (its URL is in .warehouse/url).",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_WAREHOUSE_WORKGROUP",
        "Redshift Serverless workgroup that gold is served to (prod).",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_WAREHOUSE_DATABASE",
        "Database of that workgroup (prod).",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_GLUE_DATABASE",
        "Glue database in which silver and gold tables are registered as Delta tables (required in "
        "prod; optional elsewhere).",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ALERTS_TOPIC_ARN",
        "SNS topic that alerts on failed checks and runs are published to (prod; the alarm topic).",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_METRICS_NAMESPACE",
        "CloudWatch namespace of the materialisation metrics (prod); the alarms and dashboard watch it.",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DAGSTER_URL",
        "Base URL of the Dagster UI, for the run links of alerts. Default locally http://127.0.0.1:3000.",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_SLACK_CHANNEL",
        "Optional Slack channel that alerts are also posted to (with LAKEHOUSE_SLACK_TOKEN).",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_SLACK_TOKEN",
        "Slack bot token (chat:write) of the alerts, when LAKEHOUSE_SLACK_CHANNEL is set.",
        terraform=True,
        secret=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_ALERT_SEVERITY",
        "Failed checks that alert: error (default: blocking checks) or warn (every failed check).",
    ),
    EnvironmentVariable(
        "AWS_REGION",
        "AWS region of the lake buckets, the events queue and the stream (us-east-1 against a local "
        "endpoint when unset).",
        required_in=_PROD,
    ),
    EnvironmentVariable(
        "AWS_ROLE_ARN",
        "IAM role the Dagster deployment assumes: through AWS_WEB_IDENTITY_TOKEN_FILE (EKS IRSA) when "
        "set, else from the compute's own credentials (an ECS task or EKS pod role, an instance "
        "profile), through a profile written for the process (see use_deployment_role).",
        required_in=_PROD,
    ),
    EnvironmentVariable(
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "Set by EKS for IRSA: the SDKs then assume AWS_ROLE_ARN with it themselves.",
    ),
    EnvironmentVariable(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "Set by ECS: the task role's credentials, from which AWS_ROLE_ARN is assumed.",
    ),
    EnvironmentVariable(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "Set by EKS Pod Identity: the pod role's credentials, from which AWS_ROLE_ARN is assumed.",
    ),
    EnvironmentVariable(
        "AWS_CONFIG_FILE",
        "Written by use_deployment_role in production: the profile that assumes AWS_ROLE_ARN.",
    ),
    EnvironmentVariable("AWS_PROFILE", "The profile of AWS_CONFIG_FILE the SDKs use."),
    EnvironmentVariable(
        "LAKEHOUSE_AWS_ENDPOINT_URL",
        "Local and test only: the AWS endpoint (a moto server, http://127.0.0.1:PORT). Unset in "
        "production, where boto3's default credential chain signs the calls.",
    ),
    EnvironmentVariable(
        "AWS_ACCESS_KEY_ID",
        "Local demo only: `make aws-local` writes a dummy value for moto (boto3 reads it). Never set "
        "in production, where the role's credentials are used.",
    ),
    EnvironmentVariable(
        "AWS_SECRET_ACCESS_KEY",
        "Local demo only, like AWS_ACCESS_KEY_ID: a dummy value that opens nothing but moto.",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_EVENTS_QUEUE_URL",
        "SQS queue fed by the EventBridge 'Object Created' rule; its sensor requests runs of the "
        "bronze tables whose files landed. Unset: the landing sensor lists the folders instead.",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_KINESIS_STREAM",
        "Kinesis stream that the stream sources (bronze.events) read. Unset: their micro-batch "
        "sensor starts stopped.",
        required_in=_PROD,
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_MLFLOW_TRACKING_URI",
        "MLflow tracking server (and model registry) of the ML assets. Default: locally the SQLite store "
        "in ./.mlflow (make mlflow-ui), in tests <root>/_mlflow; in prod `databricks`, the workspace, "
        "with models in Unity Catalog (<LAKEHOUSE_CATALOG>.ml.<model>).",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_MLFLOW_EXPERIMENT",
        "MLflow experiment of the training runs (default lakehouse_dagster; in prod "
        "/Shared/lakehouse_dagster).",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_OWN_VARIABLES",
        "Comma-separated LAKEHOUSE_* names that are the deployment's own, not settings: never "
        "taken for a misspelt setting.",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_STREAM_INTERVAL_SECONDS",
        "Seconds between two micro-batches of a stream (default 15; 5 to 3600).",
    ),
    # The Databricks runner (runners/databricks.py). Credentials are read by the Databricks SDK.
    EnvironmentVariable("DATABRICKS_HOST", "Databricks workspace URL (https://...).", terraform=True),
    EnvironmentVariable(
        "DATABRICKS_CLIENT_ID",
        "OAuth (machine-to-machine) client ID of the Dagster service principal, with "
        "DATABRICKS_CLIENT_SECRET.",
        terraform=True,
    ),
    EnvironmentVariable(
        "DATABRICKS_CLIENT_SECRET",
        "OAuth secret of the Dagster service principal (from a secret store).",
        terraform=True,
        secret=True,
    ),
    EnvironmentVariable(
        "DATABRICKS_TOKEN",
        "Instead of OAuth: a Databricks token of the Dagster service principal (from a secret store).",
        terraform=True,
        secret=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_COMPUTE",
        "Where units run: job_cluster (default, a new cluster per unit), serverless or existing_cluster.",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_ARTIFACTS",
        "Folder holding the project's wheel: a volume (/Volumes/<catalog>/<schema>/<volume>) or "
        "/Workspace/...",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_PIPES_CHANNEL",
        "Where Pipes exchanges context and messages with a cluster: volume (default) or dbfs. "
        "Serverless: volume.",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_VOLUME",
        "Unity Catalog volume of the Pipes channel: /Volumes/<catalog>/<schema>/<volume>.",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID",
        "Cluster policy of the job clusters.",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN", "Instance profile of the job clusters.", terraform=True
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_SPARK_VERSION",
        "Databricks Runtime of the job clusters, e.g. 16.4.x-scala2.12 (Python 3.11 or 3.12).",
        terraform=True,
    ),
    EnvironmentVariable("LAKEHOUSE_DATABRICKS_NODE_TYPE", "Node type of the job clusters.", terraform=True),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_MIN_WORKERS",
        "Fewest workers of a job cluster (autoscale; default 1).",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_MAX_WORKERS",
        "Most workers of a job cluster (autoscale; default 2).",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_CLUSTER_TAGS",
        'Custom tags of the job clusters, as a JSON object of strings (e.g. {"Project": "lakehouse"}).',
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_CLUSTER_ID",
        "The running cluster units use when LAKEHOUSE_DATABRICKS_COMPUTE=existing_cluster.",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_DATABRICKS_SERVERLESS_ENVIRONMENT",
        "Environment version of serverless jobs compute (default 3: Python 3.12).",
        terraform=True,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_PIPES_MOUNT_ROOT",
        "On the machine that runs a Pipes task: where DBFS (<root>/dbfs) and volumes (<root>/Volumes) are "
        "mounted. / on Databricks (the default); tests point it at a fake workspace's folder.",
    ),
)


def declared_variable_names() -> set[str]:
    return {variable.name for variable in ENVIRONMENT_VARIABLES}


_PREFIX = "LAKEHOUSE_"
_LAYER_ROOT_PREFIX = _PREFIX + "ROOT_"
#: How alike (difflib's ratio, on the part after the prefix) an undeclared ``LAKEHOUSE_*`` name
#: must be to a declared one to be taken for a misspelling of it and refused.
TYPO_CUTOFF = 0.85
#: Undeclared names already warned of in this process (settings load in every run and step).
_WARNED: set[str] = set()


def check_variable_names(env: Mapping[str, str]) -> None:
    """Refuse a set ``LAKEHOUSE_*`` variable that is not declared but close to a declared one
    (``LAKEHOUSE_ROOT_SILVR``), or names a layer root we do not have (``LAKEHOUSE_ROOT_OPS``):
    its setting would silently keep its default. Other undeclared ``LAKEHOUSE_*`` names may be
    the user's own (``LAKEHOUSE_OWN_VARIABLES`` lists them): a warning only, once."""
    declared = declared_variable_names()
    own = {name.strip() for name in env.get("LAKEHOUSE_OWN_VARIABLES", "").split(",") if name.strip()}
    ours = {name.removeprefix(_PREFIX): name for name in declared if name.startswith(_PREFIX)}
    unknown = sorted(
        name for name in env if name.startswith(_PREFIX) and name not in declared | own and env[name].strip()
    )
    mistakes = []
    for name in unknown:
        close = difflib.get_close_matches(name.removeprefix(_PREFIX), ours, n=1, cutoff=TYPO_CUTOFF)
        if close:
            mistakes.append(f"{name} (did you mean {ours[close[0]]}?)")
        elif name.startswith(_LAYER_ROOT_PREFIX):
            roots = ", ".join(sorted(v for v in declared if v.startswith(_LAYER_ROOT_PREFIX)))
            mistakes.append(f"{name} (the layer roots are {roots})")
        elif name not in _WARNED:
            _WARNED.add(name)
            _LOG.warning(
                "%s is not a setting of lakehouse_dagster: it is ignored (list it in "
                "LAKEHOUSE_OWN_VARIABLES if it is yours)",
                name,
            )
    if mistakes:
        raise SettingsError(
            f"unknown environment variable(s) {', '.join(mistakes)}: rename or unset them, or list "
            "them in LAKEHOUSE_OWN_VARIABLES if they are yours; otherwise their setting keeps its default"
        )


LOCAL_DEFAULT_ROOT = "./.lakehouse"
#: The project-local PostgreSQL of `make warehouse` (relative to the working directory, like the root).
LOCAL_WAREHOUSE_DIR = "./.warehouse"
_LAYER_ROOT_VARIABLES = {
    "bronze": "LAKEHOUSE_ROOT_BRONZE",
    "silver": "LAKEHOUSE_ROOT_SILVER",
    "gold": "LAKEHOUSE_ROOT_GOLD",
}
_CATALOG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Sail logs every session at INFO level on stderr; keep its warnings and errors only.
ENGINE_LOG_FILTER = "warn,sail_common::actor=error"
#: Against a local endpoint without AWS_REGION (moto serves any region).
LOCAL_AWS_REGION = "us-east-1"
DEFAULT_STREAM_INTERVAL_SECONDS = 15


@dataclass(frozen=True)
class WarehouseSettings:
    """Where gold is served: PostgreSQL (``url``; locally, by default, the project-local server
    in ``local_dir``) locally and in tests; Redshift Serverless (``workgroup``, ``database``) in
    production; and the Glue database silver and gold are registered in, when there is one."""

    url: str | None = None
    #: Only the local deployment falls back on the project-local server: tests never touch it.
    local_dir: str | None = None
    workgroup: str | None = None
    database: str | None = None
    glue_database: str | None = None
    region: str | None = None


#: Where `make dev` serves the Dagster UI.
LOCAL_DAGSTER_URL = "http://127.0.0.1:3000"


class AlertSeverity(StrEnum):
    ERROR = "error"
    WARN = "warn"


@dataclass(frozen=True)
class MonitoringSettings:
    """Where alerts and metrics go: SNS, CloudWatch and optionally Slack in production; a file
    and the lake (``ops.metrics``) elsewhere."""

    alerts_topic_arn: str | None = None
    metrics_namespace: str | None = None
    dagster_url: str | None = LOCAL_DAGSTER_URL
    slack_channel: str | None = None
    #: Whether a Slack token is set (its value is read at run time, never kept in config).
    slack_token_set: bool = False
    alert_severity: AlertSeverity = AlertSeverity.ERROR


@dataclass(frozen=True)
class LakehouseSettings:
    """Everything a deployment decides, resolved from the environment once."""

    deployment: Deployment
    layout: LakeLayout
    engine: EngineSettings
    as_of_date: date | None = None
    partitions_start: date | None = None
    thresholds_file: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds.load)
    unit_runner: UnitRunnerKind = UnitRunnerKind.IN_PROCESS
    #: How units run on Databricks, with the databricks runner.
    databricks: DatabricksSettings | None = None
    warehouse: WarehouseSettings = field(default_factory=lambda: WarehouseSettings())
    #: The SQS queue of the landing bucket's "Object Created" events.
    events_queue_url: str | None = None
    stream_interval_seconds: int = DEFAULT_STREAM_INTERVAL_SECONDS
    #: Where the ML assets track runs and register models; when not given, the deployment's
    #: default store (``default_mlflow``), set by ``__post_init__``.
    mlflow: MlflowSettings | None = None
    monitoring: MonitoringSettings = field(default_factory=lambda: MonitoringSettings())

    def __post_init__(self) -> None:
        if self.mlflow is None:
            object.__setattr__(self, "mlflow", default_mlflow(self.deployment, self.layout.root))

    @property
    def aws(self) -> AwsConfig:
        return self.layout.aws

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LakehouseSettings:
        env = os.environ if env is None else env

        def value(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        check_variable_names(env)
        deployment = _choice(value, "LAKEHOUSE_DEPLOYMENT", Deployment, Deployment.LOCAL)
        if deployment is Deployment.PROD and env is os.environ:
            use_deployment_role(Path(tempfile.gettempdir()) / f"lakehouse-{os.getuid()}")
        if deployment is Deployment.PROD and value("LAKEHOUSE_AWS_ENDPOINT_URL"):
            raise SettingsError(
                "LAKEHOUSE_AWS_ENDPOINT_URL is for local and test deployments (a moto server); "
                "production talks to AWS itself"
            )
        missing = [
            variable.name
            for variable in ENVIRONMENT_VARIABLES
            if deployment in variable.required_in and value(variable.name) is None
        ]
        if missing:
            raise SettingsError(
                f"deployment {deployment.value!r} needs environment variable(s): {', '.join(missing)}"
            )
        mode = _choice(value, "LAKEHOUSE_ENGINE", EngineMode, None) if value("LAKEHOUSE_ENGINE") else None
        try:
            engine = EngineSettings(
                remote_url=value("LAKEHOUSE_SPARK_REMOTE"),
                mode=mode,
                master=value("LAKEHOUSE_SPARK_MASTER") or "local[*]",
            )
        except ValueError as error:
            raise SettingsError(f"LAKEHOUSE_SPARK_REMOTE: {error}") from None
        _check_engine_uses_remote(engine, value)
        thresholds_file = value("LAKEHOUSE_QUALITY_THRESHOLDS")
        try:
            thresholds = Thresholds.load(thresholds_file)
        except ThresholdsError as error:
            raise SettingsError(f"LAKEHOUSE_QUALITY_THRESHOLDS: {error}") from None
        unit_runner = _choice(
            value,
            "LAKEHOUSE_UNIT_RUNNER",
            UnitRunnerKind,
            UnitRunnerKind.DATABRICKS if deployment is Deployment.PROD else UnitRunnerKind.IN_PROCESS,
        )
        if (
            deployment is Deployment.PROD
            and unit_runner is not UnitRunnerKind.DATABRICKS
            and not engine.remote_url
        ):
            raise SettingsError(
                f"LAKEHOUSE_UNIT_RUNNER={unit_runner.value} in prod needs LAKEHOUSE_SPARK_REMOTE "
                "(the engine these units run on)"
            )
        return cls(
            deployment=deployment,
            layout=_layout(value, _aws(value)),
            engine=engine,
            as_of_date=_date(value, "LAKEHOUSE_AS_OF_DATE"),
            partitions_start=_date(value, "LAKEHOUSE_PARTITIONS_START"),
            thresholds_file=thresholds_file,
            thresholds=thresholds,
            unit_runner=unit_runner,
            databricks=_databricks(value, deployment) if unit_runner is UnitRunnerKind.DATABRICKS else None,
            warehouse=WarehouseSettings(
                url=_warehouse_url(value),
                local_dir=LOCAL_WAREHOUSE_DIR if deployment is Deployment.LOCAL else None,
                workgroup=value("LAKEHOUSE_WAREHOUSE_WORKGROUP"),
                database=value("LAKEHOUSE_WAREHOUSE_DATABASE"),
                glue_database=value("LAKEHOUSE_GLUE_DATABASE"),
                region=value("AWS_REGION"),
            ),
            events_queue_url=value("LAKEHOUSE_EVENTS_QUEUE_URL"),
            stream_interval_seconds=_seconds(value, "LAKEHOUSE_STREAM_INTERVAL_SECONDS"),
            mlflow=_mlflow(value, deployment),
            monitoring=_monitoring(value, deployment),
        )


def _check_engine_uses_remote(engine: EngineSettings, value: Callable[[str], str | None]) -> None:
    """A Spark Connect URL the chosen engine would ignore is a mistake (the URL is not shown: it
    may carry a token)."""
    if engine.mode is not EngineMode.REMOTE and value("LAKEHOUSE_SPARK_REMOTE") is not None:
        raise SettingsError(
            f"LAKEHOUSE_ENGINE={engine.mode.value} and LAKEHOUSE_SPARK_REMOTE are both set: the "
            f"{engine.mode.value} engine ignores the Spark Connect URL. Unset one of them "
            "(LAKEHOUSE_SPARK_REMOTE alone selects the remote engine)"
        )


_Choice = TypeVar("_Choice", bound=StrEnum)


def _choice(
    value: Callable[[str], str | None], name: str, choices: type[_Choice], default: _Choice
) -> _Choice:
    raw = value(name) or default.value
    try:
        return choices(raw)
    except ValueError:
        known = ", ".join(choice.value for choice in choices)
        raise SettingsError(f"{name}={raw!r}: expected one of {known}") from None


def _mlflow(value: Callable[[str], str | None], deployment: Deployment) -> MlflowSettings:
    """The project-local SQLite store locally (under the lake root in tests), the Databricks
    workspace with Unity Catalog models in prod; LAKEHOUSE_MLFLOW_TRACKING_URI overrides either."""
    uri, experiment = value("LAKEHOUSE_MLFLOW_TRACKING_URI"), value("LAKEHOUSE_MLFLOW_EXPERIMENT")
    if uri == DATABRICKS_TRACKING or (uri is None and deployment is Deployment.PROD):
        return MlflowSettings.databricks(
            value("LAKEHOUSE_CATALOG"), experiment=experiment or DATABRICKS_EXPERIMENT
        )
    if uri is not None:
        if uri.startswith("sqlite:///"):
            folder = Path(uri.removeprefix("sqlite:///")).parent
            return MlflowSettings(
                uri, uri, experiment or DEFAULT_EXPERIMENT, (folder / "artifacts").resolve().as_uri()
            )
        return MlflowSettings(uri, uri, experiment or DEFAULT_EXPERIMENT)
    return default_mlflow(deployment, value("LAKEHOUSE_ROOT"), experiment or DEFAULT_EXPERIMENT)


def default_mlflow(
    deployment: Deployment, root: str | None, experiment: str = DEFAULT_EXPERIMENT
) -> MlflowSettings:
    """A SQLite store: in tests under the lake root (never the project's), else ./.mlflow."""
    if deployment is Deployment.TEST and root and not is_remote(root):
        return MlflowSettings.local(Path(root) / "_mlflow", experiment)
    return MlflowSettings.local(LOCAL_MLFLOW_FOLDER, experiment)


def _aws(value: Callable[[str], str | None]) -> AwsConfig:
    endpoint = value("LAKEHOUSE_AWS_ENDPOINT_URL")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"LAKEHOUSE_AWS_ENDPOINT_URL={endpoint!r}: expected http://host:port")
    region = value("AWS_REGION") or (LOCAL_AWS_REGION if endpoint else None)
    return AwsConfig(region=region, endpoint_url=endpoint)


def _warehouse_url(value: Callable[[str], str | None]) -> str | None:
    """A PostgreSQL URL (``postgresql://user@host:port/database``), or none."""
    url = value("LAKEHOUSE_WAREHOUSE_URL")
    if url is None:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise SettingsError(
            f"LAKEHOUSE_WAREHOUSE_URL: expected a PostgreSQL URL like "
            f"postgresql://user@127.0.0.1:5432/lakehouse, got one starting {url.split(':', 1)[0]!r}"
        )
    return url


def _seconds(value: Callable[[str], str | None], name: str) -> int:
    raw = value(name)
    if raw is None:
        return DEFAULT_STREAM_INTERVAL_SECONDS
    if not (raw.isascii() and raw.isdigit()) or not 5 <= int(raw) <= 3600:
        raise SettingsError(f"{name}={raw!r}: expected a whole number of seconds from 5 to 3600")
    return int(raw)


def _layout(value: Callable[[str], str | None], aws: AwsConfig) -> LakeLayout:
    def root(name: str, default: str | None = None) -> str | None:
        raw = value(name) or default
        if raw is None:
            return None
        try:
            return check_root(normalize_root(raw), name)
        except UnsafeRootError as error:
            unset = value(name) is None  # the default, under the project's folder: the folder is at fault
            hint = (
                f" ({name} is unset: its default is {default} in the folder {os.getcwd()})" if unset else ""
            )
            raise SettingsError(f"{error}{hint}") from None

    lake_root = root("LAKEHOUSE_ROOT", LOCAL_DEFAULT_ROOT)
    assert lake_root is not None
    landing = value("LAKEHOUSE_LANDING")
    catalog = value("LAKEHOUSE_CATALOG")
    if catalog is not None and not all(_CATALOG.match(part) for part in catalog.split(".")):
        raise SettingsError(f"LAKEHOUSE_CATALOG={catalog!r}: expected a catalog name (letters, digits, _)")
    layer_roots = {
        layer: layer_root
        for layer, variable in _LAYER_ROOT_VARIABLES.items()
        if (layer_root := root(variable)) is not None
    }
    try:
        return LakeLayout(
            root=lake_root,
            # The landing zone is read with Arrow, not written by the engine: any path will do.
            landing=normalize_root(landing) if landing else join_uri(lake_root, "landing"),
            layer_roots=layer_roots,
            catalog=catalog,
            aws=aws,
            landing_stream=value("LAKEHOUSE_KINESIS_STREAM"),
        )
    except OverlappingRootsError as error:
        raise SettingsError(error.describe(lambda area: _area_variable(area, value))) from None


def _area_variable(area: str, value: Callable[[str], str | None]) -> str:
    """The variable that puts ``area`` of the layout where it is: its own, else LAKEHOUSE_ROOT's
    folder of that name."""
    own = "LAKEHOUSE_LANDING" if area == LANDING_AREA else _LAYER_ROOT_VARIABLES.get(area)
    if own is not None and value(own) is not None:
        return own
    folder = STAGING_FOLDER if area == STAGING_AREA else area
    return f"LAKEHOUSE_ROOT (its {folder} folder)"


def _monitoring(value: Callable[[str], str | None], deployment: Deployment) -> MonitoringSettings:
    topic = value("LAKEHOUSE_ALERTS_TOPIC_ARN")
    if topic is not None and not topic.startswith("arn:"):
        raise SettingsError(
            f"LAKEHOUSE_ALERTS_TOPIC_ARN={topic!r}: expected an SNS topic ARN (arn:aws:sns:...)"
        )
    url = value("LAKEHOUSE_DAGSTER_URL") or (LOCAL_DAGSTER_URL if deployment is not Deployment.PROD else None)
    if url is not None and not url.startswith(("https://", "http://")):
        raise SettingsError(f"LAKEHOUSE_DAGSTER_URL={url!r}: expected a URL like https://dagster.example.com")
    channel, token = value("LAKEHOUSE_SLACK_CHANNEL"), value("LAKEHOUSE_SLACK_TOKEN") is not None
    _check_slack(value)
    return MonitoringSettings(
        alerts_topic_arn=topic,
        metrics_namespace=value("LAKEHOUSE_METRICS_NAMESPACE"),
        dagster_url=url.rstrip("/") if url else None,
        slack_channel=channel,
        slack_token_set=token,
        alert_severity=_choice(value, "LAKEHOUSE_ALERT_SEVERITY", AlertSeverity, AlertSeverity.ERROR),
    )


_VOLUME = re.compile(r"^/Volumes/[^/]+/[^/]+/[^/]+(/[^/]+)*$")
_LIBRARY_ROOTS = ("/Volumes/", "/Workspace/", "dbfs:/", "s3://")


def _databricks(value: Callable[[str], str | None], deployment: Deployment) -> DatabricksSettings:
    """The Databricks runner's settings; every error names its variable."""

    def required(name: str, why: str) -> str:
        raw = value(name)
        if raw is None:
            raise SettingsError(f"LAKEHOUSE_UNIT_RUNNER=databricks needs {name} ({why})")
        return raw

    host = required("DATABRICKS_HOST", "the workspace URL")
    if not host.startswith(("https://", "http://")):
        raise SettingsError(
            f"DATABRICKS_HOST={host!r}: expected a URL like https://dbc-1234.cloud.databricks.com"
        )
    if deployment is Deployment.PROD:
        _check_credentials(value)
    artifacts = required("LAKEHOUSE_DATABRICKS_ARTIFACTS", "the folder of the project's wheel").rstrip("/")
    if not artifacts.startswith(_LIBRARY_ROOTS):
        raise SettingsError(
            f"LAKEHOUSE_DATABRICKS_ARTIFACTS={artifacts!r}: "
            f"expected a folder under {', '.join(_LIBRARY_ROOTS)}"
        )
    compute = _choice(value, "LAKEHOUSE_DATABRICKS_COMPUTE", DatabricksCompute, DatabricksCompute.JOB_CLUSTER)
    channel = _choice(value, "LAKEHOUSE_DATABRICKS_PIPES_CHANNEL", PipesChannel, PipesChannel.VOLUME)
    if compute is DatabricksCompute.SERVERLESS and channel is PipesChannel.DBFS:
        raise SettingsError(
            "LAKEHOUSE_DATABRICKS_PIPES_CHANNEL=dbfs: serverless compute exchanges Pipes messages through a "
            "Unity Catalog volume only (LAKEHOUSE_DATABRICKS_VOLUME)"
        )
    volume = value("LAKEHOUSE_DATABRICKS_VOLUME")
    if channel is PipesChannel.VOLUME:
        volume = required("LAKEHOUSE_DATABRICKS_VOLUME", "the Unity Catalog volume Pipes exchanges files in")
    if volume is not None:
        volume = volume.rstrip("/")
        if not _VOLUME.match(volume):
            raise SettingsError(
                f"LAKEHOUSE_DATABRICKS_VOLUME={volume!r}: expected /Volumes/<catalog>/<schema>/<volume>"
            )
    job_cluster = cluster_id = None
    if compute is DatabricksCompute.JOB_CLUSTER:
        job_cluster = _job_cluster(value, required)
    elif compute is DatabricksCompute.EXISTING_CLUSTER:
        cluster_id = required("LAKEHOUSE_DATABRICKS_CLUSTER_ID", "the cluster of existing_cluster compute")
    return DatabricksSettings(
        host=host.rstrip("/"),
        artifacts=artifacts,
        compute=compute,
        channel=channel,
        volume=volume,
        job_cluster=job_cluster,
        cluster_id=cluster_id,
        serverless_environment=value("LAKEHOUSE_DATABRICKS_SERVERLESS_ENVIRONMENT") or "3",
    )


def check_companions(env: Mapping[str, str]) -> None:
    """The variables that go in pairs, as a production environment must give them: a Slack
    channel with its token, one way of authenticating to Databricks for its runner. For tools
    that write an environment (``infra/scripts/render_dagster_env.py``)."""

    def value(name: str) -> str | None:
        return (env.get(name) or "").strip() or None

    _check_slack(value)
    if value("LAKEHOUSE_UNIT_RUNNER") == UnitRunnerKind.DATABRICKS.value:
        _check_credentials(value)


def _check_slack(value: Callable[[str], str | None]) -> None:
    if value("LAKEHOUSE_SLACK_CHANNEL") is not None and value("LAKEHOUSE_SLACK_TOKEN") is None:
        raise SettingsError("LAKEHOUSE_SLACK_CHANNEL is set: alerts to Slack need LAKEHOUSE_SLACK_TOKEN")


def _check_credentials(value: Callable[[str], str | None]) -> None:
    """One way to authenticate, as the Databricks SDK will find it: OAuth, or a token."""
    oauth = [name for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET") if value(name)]
    token = value("DATABRICKS_TOKEN") is not None
    if token and oauth:
        raise SettingsError(
            f"both DATABRICKS_TOKEN and {', '.join(oauth)} are set: give the Databricks SDK one way to "
            "authenticate (OAuth client ID and secret, or a token)"
        )
    if not token and len(oauth) < 2:
        missing = {"DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"} - set(oauth)
        raise SettingsError(
            f"LAKEHOUSE_UNIT_RUNNER=databricks in prod needs credentials: {' and '.join(sorted(missing))} "
            "(OAuth of the Dagster service principal), or DATABRICKS_TOKEN"
        )


def _job_cluster(
    value: Callable[[str], str | None], required: Callable[[str, str], str]
) -> JobClusterSettings:
    min_workers = _count(value, "LAKEHOUSE_DATABRICKS_MIN_WORKERS", 1)
    max_workers = _count(value, "LAKEHOUSE_DATABRICKS_MAX_WORKERS", max(2, min_workers))
    if not 1 <= min_workers <= max_workers:
        raise SettingsError(
            f"LAKEHOUSE_DATABRICKS_MIN_WORKERS={min_workers} and "
            f"LAKEHOUSE_DATABRICKS_MAX_WORKERS={max_workers}: expected 1 <= min <= max"
        )
    return JobClusterSettings(
        spark_version=required(
            "LAKEHOUSE_DATABRICKS_SPARK_VERSION", "the Databricks Runtime of job clusters"
        ),
        node_type=required("LAKEHOUSE_DATABRICKS_NODE_TYPE", "the node type of job clusters"),
        min_workers=min_workers,
        max_workers=max_workers,
        policy_id=value("LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID"),
        instance_profile_arn=value("LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN"),
        tags=_tags(value, "LAKEHOUSE_DATABRICKS_CLUSTER_TAGS"),
    )


def _count(value: Callable[[str], str | None], name: str, default: int) -> int:
    raw = value(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise SettingsError(f"{name}={raw!r}: expected a whole number")
    return int(raw)


def _tags(value: Callable[[str], str | None], name: str) -> dict[str, str]:
    raw = value(name)
    if raw is None:
        return {}
    try:
        tags = json.loads(raw)
    except json.JSONDecodeError as error:
        raise SettingsError(
            f'{name}: not JSON ({error}); expected an object like {{"Project": "x"}}'
        ) from None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise SettingsError(f"{name}={raw!r}: expected a JSON object of string values")
    return tags


def pipes_mount_root(env: Mapping[str, str] | None = None) -> str:
    """Where a Pipes task finds DBFS and the volumes (``LAKEHOUSE_PIPES_MOUNT_ROOT``; ``/`` on Databricks)."""
    env = os.environ if env is None else env
    return (env.get("LAKEHOUSE_PIPES_MOUNT_ROOT") or "").strip() or "/"


def _date(value: Callable[[str], str | None], name: str) -> date | None:
    raw = value(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a date like 2026-11-26") from None


def quiet_engine_logs(env: MutableMapping[str, str] | None = None) -> None:
    """Keep the embedded engine's logs to warnings and errors, unless ``RUST_LOG`` says otherwise.
    Called before the engine starts, never at import."""
    (os.environ if env is None else env).setdefault("RUST_LOG", ENGINE_LOG_FILTER)


#: What moto accepts as credentials; they open nothing else.
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def use_moto_credentials(endpoint_url: str | None) -> None:
    """Against a local endpoint (moto), give boto3 in this process and its children the dummy
    credentials it wants, unless some are set. Does nothing without an endpoint (production)."""
    if endpoint_url:
        for name, value in MOTO_CREDENTIALS.items():
            os.environ.setdefault(name, value)


#: The profile use_deployment_role writes.
ROLE_PROFILE = "lakehouse-deployment-role"


def deployment_role_profile(env: Mapping[str, str]) -> str | None:
    """The AWS config profile that assumes ``AWS_ROLE_ARN`` from the compute's own credentials,
    or None where the SDKs need none (no role, EKS IRSA: they assume it with the web identity
    token themselves, a profile chosen already) or would not use it (static keys, warned of)."""
    role = (env.get("AWS_ROLE_ARN") or "").strip()
    if not role or env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get("AWS_PROFILE"):
        return None
    if env.get("AWS_ACCESS_KEY_ID"):
        # The SDKs use keys in the environment before any profile: a profile would change nothing.
        _LOG.warning(
            "AWS_ROLE_ARN is set with AWS_ACCESS_KEY_ID: the AWS SDKs sign with the keys and do not "
            "assume the role (a deploy's validation may have keys; a running deployment should not)"
        )
        return None
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        source = "EcsContainer"  # an ECS task role, or an EKS Pod Identity role
    else:
        source = "Ec2InstanceMetadata"  # an instance profile
    return (
        f"[profile {ROLE_PROFILE}]\nrole_arn = {role}\ncredential_source = {source}\n"
        "role_session_name = lakehouse-dagster\n"
    )


def use_deployment_role(folder: Path, env: MutableMapping[str, str] | None = None) -> bool:
    """Make every AWS SDK client of this process and of its children (dagster-aws's included)
    assume ``AWS_ROLE_ARN``: the SDKs read that variable only with a web identity token. Writes
    the profile to ``folder`` and points AWS_CONFIG_FILE and AWS_PROFILE at it; botocore then
    assumes the role, and refreshes its credentials, itself. Returns whether it did."""
    env = os.environ if env is None else env
    profile = deployment_role_profile(env)
    if profile is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "aws-config"
    written = folder / f"aws-config.{os.getpid()}"  # whole or not at all: other processes read it
    written.write_text(profile)
    os.replace(written, config)
    env["AWS_CONFIG_FILE"], env["AWS_PROFILE"] = str(config), ROLE_PROFILE
    return True


def process_environment() -> dict[str, str]:
    """The environment a unit's own process inherits (the deployment's settings with it)."""
    return dict(os.environ)
