"""Shared fixtures: one Sail server and one moto server (AWS on loopback) for the whole test
session, a fresh lake per test."""

from __future__ import annotations

import logging
import os
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
from lakehouse_dagster.runners.in_process import InProcessRunner


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
def resources(sail_url: str, layout: LakeLayout) -> dict[str, Any]:
    """The test deployment's resources: units run here, on the shared Sail server, in this test's lake."""
    return {
        "runner": InProcessRunner(
            spark=SparkResource(mode="remote", remote_url=sail_url), lake=LakeResource.from_layout(layout)
        )
    }


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
