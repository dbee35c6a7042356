"""The Databricks runner in tests: a fake workspace that really runs the tasks, and the settings
that point the production wiring (``build_definitions`` with ``LAKEHOUSE_UNIT_RUNNER=databricks``)
at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.runners.settings import wheel_name
from lakehouse_dagster_tests.fake_databricks import TOKEN, FakeWorkspace

REPO = Path(__file__).parents[1]
PIPES_VOLUME = "/Volumes/lakehouse/ops/pipes"
ARTIFACTS = "/Volumes/lakehouse/ops/artifacts"
WHEEL = f"{ARTIFACTS}/{wheel_name(version('lakehouse_dagster'))}"
CLUSTER_ID = "0101-123456-fakecluster"
JOB_CLUSTER = {
    "LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID": "E0123456789ABCDE",
    "LAKEHOUSE_DATABRICKS_SPARK_VERSION": "16.4.x-scala2.12",
    "LAKEHOUSE_DATABRICKS_NODE_TYPE": "m6gd.xlarge",
    "LAKEHOUSE_DATABRICKS_MIN_WORKERS": "1",
    "LAKEHOUSE_DATABRICKS_MAX_WORKERS": "3",
    "LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN": "arn:aws:iam::123456789012:instance-profile/lakehouse",
    "LAKEHOUSE_DATABRICKS_CLUSTER_TAGS": '{"Project": "lakehouse", "CostCenter": "data-platform"}',
}


@contextmanager
def fake_workspace(
    root: Path, sail_url: str, *, wheel: bool = True, pythonpath: tuple[str, ...] = (str(REPO),), **options
) -> Iterator[FakeWorkspace]:
    """A running fake workspace with the Pipes and artifacts volumes (and the wheel, unless not).
    Its tasks see this repository (the tests' registries, as a fork's would be in its wheel)."""
    workspace = FakeWorkspace(
        root,
        spark_remote=sail_url,
        pythonpath=pythonpath,
        volumes=[PIPES_VOLUME, ARTIFACTS],
        clusters=[CLUSTER_ID],
        **options,
    )
    if wheel:
        workspace.put_file(WHEEL, b"the wheel `make wheel` builds")
    with workspace:
        yield workspace


def databricks_env(workspace: FakeWorkspace, lake: Path, landing: Path, **overrides: str) -> dict[str, str]:
    """A test deployment whose units run on the fake workspace, on job clusters by default."""
    return {
        "LAKEHOUSE_DEPLOYMENT": "test",
        "LAKEHOUSE_ROOT": str(lake),
        "LAKEHOUSE_LANDING": str(landing),
        "LAKEHOUSE_UNIT_RUNNER": "databricks",
        "DATABRICKS_HOST": workspace.host,
        "DATABRICKS_TOKEN": TOKEN,  # read by the Databricks SDK
        "LAKEHOUSE_DATABRICKS_ARTIFACTS": ARTIFACTS,
        "LAKEHOUSE_DATABRICKS_VOLUME": PIPES_VOLUME,
        **JOB_CLUSTER,
        **overrides,
    }


def databricks_definitions(
    env: Mapping[str, str], registry: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[LakehouseSettings, dg.Definitions]:
    """The code location of ``env`` (also set in this process: the SDK reads the token there),
    polling the fake as often as it can answer."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = LakehouseSettings.from_env(env)
    assert settings.databricks is not None
    quick = dataclasses.replace(settings.databricks, poll_interval_seconds=0.1, messages_interval_seconds=0.5)
    settings = dataclasses.replace(settings, databricks=quick)
    return settings, build_definitions(settings, registry)
