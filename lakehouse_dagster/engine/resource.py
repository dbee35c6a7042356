"""Dagster resource for the engine seam."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Literal

import dagster as dg
from pydantic import PrivateAttr
from pyspark.sql import SparkSession

from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.engine.settings import EngineSettings


class SparkResource(dg.ConfigurableResource):
    """Hands assets a SparkSession.

    ``embedded`` (the default) starts one Sail server for the whole run, lazily on first use;
    ``remote`` connects to any Spark Connect URL. The session is stopped before the server
    when the run's resources are torn down.
    """

    mode: Literal["embedded", "remote"] = "embedded"
    remote_url: str | None = None

    _stack: ExitStack | None = PrivateAttr(default=None)
    _session: SparkSession | None = PrivateAttr(default=None)

    def engine_settings(self) -> EngineSettings:
        if self.mode == "remote" and not self.remote_url:
            raise ValueError("SparkResource: mode 'remote' needs remote_url (LAKEHOUSE_SPARK_REMOTE)")
        return EngineSettings(remote_url=self.remote_url if self.mode == "remote" else None)

    def get_session(self) -> SparkSession:
        if self._session is None:
            self._stack = ExitStack()
            self._session = self._stack.enter_context(spark_session(self.engine_settings()))
        return self._session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        stack, self._stack, self._session = self._stack, None, None
        if stack is not None:
            stack.close()
