"""Shared fixtures: one Sail server for the whole test session, a fresh lake per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

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
