"""Deployment settings: the one place that reads or writes the environment.

The deployment is chosen by ``LAKEHOUSE_DEPLOYMENT`` (``local``, ``test`` or ``prod``).
Every environment variable the package reads or writes is declared in
``ENVIRONMENT_VARIABLES``; a test fails if any other module touches the environment, or if
this one touches an undeclared variable, and the Terraform wiring test checks that every
production variable is produced by an output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TypeVar

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.layout import LakeLayout, UnsafeRootError, check_root, join_uri, normalize_root
from lakehouse_dagster.quality.thresholds import Thresholds, ThresholdsError


class Deployment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PROD = "prod"


class UnitRunnerKind(StrEnum):
    """Where a unit of work runs."""

    IN_PROCESS = "in_process"
    SUBPROCESS = "subprocess"


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
        "LAKEHOUSE_PARTITIONS_START",
        "Optional first day (YYYY-MM-DD) of every daily partitioning, instead of the one each declares.",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_QUALITY_THRESHOLDS",
        "Optional YAML file of per-table quality thresholds (default: quality/thresholds.yaml).",
    ),
    EnvironmentVariable(
        "LAKEHOUSE_UNIT_RUNNER",
        "Where units of work run: in_process (default) or subprocess (one process per table).",
    ),
    EnvironmentVariable(
        "RUST_LOG",
        "Log filter of the embedded engine; set to warnings and errors when unset.",
    ),
    EnvironmentVariable(
        "AWS_REGION",
        "AWS region of the lake buckets, the events queue and the stream (us-east-1 against a local "
        "endpoint when unset).",
        required_in=_PROD,
    ),
    EnvironmentVariable(
        "AWS_ROLE_ARN", "IAM role the Dagster deployment assumes (read by the AWS SDKs).", required_in=_PROD
    ),
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
    ),
    EnvironmentVariable(
        "LAKEHOUSE_KINESIS_STREAM",
        "Kinesis stream that the stream sources (bronze.events) read. Unset: their micro-batch "
        "sensor starts stopped.",
        required_in=_PROD,
    ),
    EnvironmentVariable(
        "LAKEHOUSE_STREAM_INTERVAL_SECONDS",
        "Seconds between two micro-batches of a stream (default 15; 5 to 3600).",
    ),
    # Production settings of components that later issues build. Declared now so that the
    # Terraform outputs and the deployment agree on one set of names.
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
_CATALOG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Sail logs every session at INFO level on stderr; keep its warnings and errors only.
ENGINE_LOG_FILTER = "warn,sail_common::actor=error"
#: Against a local endpoint without AWS_REGION (moto serves any region).
LOCAL_AWS_REGION = "us-east-1"
DEFAULT_STREAM_INTERVAL_SECONDS = 15


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
    #: The SQS queue of the landing bucket's "Object Created" events.
    events_queue_url: str | None = None
    stream_interval_seconds: int = DEFAULT_STREAM_INTERVAL_SECONDS

    @property
    def aws(self) -> AwsConfig:
        return self.layout.aws

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LakehouseSettings:
        env = os.environ if env is None else env

        def value(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        deployment = _choice(value, "LAKEHOUSE_DEPLOYMENT", Deployment, Deployment.LOCAL)
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
        try:
            engine = EngineSettings(remote_url=value("LAKEHOUSE_SPARK_REMOTE"))
        except ValueError as error:
            raise SettingsError(f"LAKEHOUSE_SPARK_REMOTE: {error}") from None
        thresholds_file = value("LAKEHOUSE_QUALITY_THRESHOLDS")
        try:
            thresholds = Thresholds.load(thresholds_file)
        except ThresholdsError as error:
            raise SettingsError(f"LAKEHOUSE_QUALITY_THRESHOLDS: {error}") from None
        return cls(
            deployment=deployment,
            layout=_layout(value, _aws(value)),
            engine=engine,
            as_of_date=_date(value, "LAKEHOUSE_AS_OF_DATE"),
            partitions_start=_date(value, "LAKEHOUSE_PARTITIONS_START"),
            thresholds_file=thresholds_file,
            thresholds=thresholds,
            unit_runner=_choice(value, "LAKEHOUSE_UNIT_RUNNER", UnitRunnerKind, UnitRunnerKind.IN_PROCESS),
            events_queue_url=value("LAKEHOUSE_EVENTS_QUEUE_URL"),
            stream_interval_seconds=_seconds(value, "LAKEHOUSE_STREAM_INTERVAL_SECONDS"),
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


def _aws(value: Callable[[str], str | None]) -> AwsConfig:
    endpoint = value("LAKEHOUSE_AWS_ENDPOINT_URL")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"LAKEHOUSE_AWS_ENDPOINT_URL={endpoint!r}: expected http://host:port")
    region = value("AWS_REGION") or (LOCAL_AWS_REGION if endpoint else None)
    return AwsConfig(region=region, endpoint_url=endpoint)


def _seconds(value: Callable[[str], str | None], name: str) -> int:
    raw = value(name)
    if raw is None:
        return DEFAULT_STREAM_INTERVAL_SECONDS
    if not raw.isdigit() or not 5 <= int(raw) <= 3600:
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
            raise SettingsError(str(error)) from None

    lake_root = root("LAKEHOUSE_ROOT", LOCAL_DEFAULT_ROOT)
    assert lake_root is not None
    landing = value("LAKEHOUSE_LANDING")
    catalog = value("LAKEHOUSE_CATALOG")
    if catalog is not None and not all(_CATALOG.match(part) for part in catalog.split(".")):
        raise SettingsError(f"LAKEHOUSE_CATALOG={catalog!r}: expected a catalog name (letters, digits, _)")
    return LakeLayout(
        root=lake_root,
        # The landing zone is read with Arrow, not written by the engine: any path will do.
        landing=normalize_root(landing) if landing else join_uri(lake_root, "landing"),
        layer_roots={
            layer: layer_root
            for layer, variable in _LAYER_ROOT_VARIABLES.items()
            if (layer_root := root(variable)) is not None
        },
        catalog=catalog,
        aws=aws,
        landing_stream=value("LAKEHOUSE_KINESIS_STREAM"),
    )


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


def process_environment() -> dict[str, str]:
    """The environment a unit's own process inherits (the deployment's settings with it)."""
    return dict(os.environ)
