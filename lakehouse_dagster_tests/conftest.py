"""Shared fixtures: one Sail server for the whole test session, a fresh lake per test; one
PostgreSQL server for the session with a fresh database per test; one moto server (AWS on
loopback) for the session."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.engine.sessions import EmbeddedSail, connect
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.lake.resource import LakeResource
from lakehouse_dagster.ml.resource import LocalMlflow
from lakehouse_dagster.runners.in_process import InProcessRunner
from lakehouse_dagster.serving.local_server import LocalPostgres

from .browser import chromium  # noqa: F401 (a fixture of the browser tests)
from .served_pipeline import ServedPipeline, build_served_pipeline


@pytest.fixture(scope="session")
def sail_url() -> Iterator[str]:
    server = EmbeddedSail()
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def spark(sail_url: str) -> Iterator[SparkSession]:
    session = connect(sail_url)
    yield session
    session.stop()


@pytest.fixture
def layout(tmp_path: Path) -> LakeLayout:
    return LakeLayout.local(str(tmp_path / "lake"))


@pytest.fixture
def landing(layout: LakeLayout) -> Path:
    path = Path(layout.landing)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def tables(spark: SparkSession, layout: LakeLayout) -> DeltaTables:
    return DeltaTables(spark, layout)


@pytest.fixture
def log() -> logging.Logger:
    return logging.getLogger("lakehouse_dagster_tests")


@pytest.fixture
def resources(sail_url: str, layout: LakeLayout, tmp_path: Path) -> dict[str, Any]:
    """The test deployment's resources: units run here, on the shared Sail server, in this test's lake,
    with this test's MLflow store."""
    return {
        "runner": InProcessRunner(
            spark=SparkResource(mode="remote", remote_url=sail_url),
            lake=LakeResource.from_layout(layout),
            mlflow=LocalMlflow(tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"),
        )
    }


class PostgresDatabases:
    """A throwaway PostgreSQL server; ``new()`` creates an empty database on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._numbers = itertools.count(1)

    def new(self) -> str:
        import psycopg

        name = f"test_{next(self._numbers)}"
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    """A real PostgreSQL server on a free port of 127.0.0.1, in a temporary folder (under /tmp:
    as root the server runs as another user, which must reach it)."""
    folder = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    os.chmod(folder, 0o755)
    server = LocalPostgres(folder)
    url = server.start(durable=False)
    try:
        yield PostgresDatabases(url)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def warehouse_url(postgres: PostgresDatabases) -> str:
    """An empty database of its own for each test."""
    return postgres.new()


@dataclass(frozen=True)
class MotoServer:
    """A moto server on loopback: every AWS call of the tests goes there."""

    endpoint_url: str
    region: str = "us-east-1"

    @property
    def aws(self) -> AwsConfig:
        return AwsConfig(region=self.region, endpoint_url=self.endpoint_url)

    def client(self, service: str) -> Any:
        return self.aws.client(service)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """The deployment's view of it (environment variables)."""
        return {"LAKEHOUSE_AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region}


def unique_name(prefix: str) -> str:
    """Resource names are unique per test: the server is shared by the whole session."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session, on 127.0.0.1 and a free port. moto accepts any
    credentials; boto3 needs some, so dummy ones are set for this process and its children."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield MotoServer(f"http://{host}:{port}")
    server.stop()


@pytest.fixture(scope="session")
def served_pipeline(sail_url, tmp_path_factory, postgres, moto_server) -> ServedPipeline:
    """Both domains built and served once (tests that use it only read, or reload the same data)."""
    return build_served_pipeline(
        sail_url, tmp_path_factory.mktemp("served"), postgres.new(), moto_server.endpoint_url
    )
