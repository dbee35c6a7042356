"""Dagster resource for the engine seam: dagster-pyspark's ``LazyPySparkResource``, with the
session's lifecycle made ours.

What the base class gives and we keep: the ``spark_session`` property, made on first use
(lazily: a run that needs no Spark starts none), and ``spark_config``, applied to the builder.

What gets in its way, and is overridden:

- it builds the session with ``getOrCreate()``, which hands out the process-wide default
  session; a Spark Connect session must be a new one (``create()``) so that stopping it at
  the end of the run stops nothing else, and the embedded engine must be started first;
- it never stops the session (nor could it stop an engine it did not start): here the
  session is stopped, then the embedded server, when the run's resources are torn down;
- ``spark_config`` is shown in the UI, so the Connect URL, which carries a token in
  production, is not part of it: ``remote_url`` takes it, from an ``EnvVar``.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Literal

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field, PrivateAttr
from pyspark.sql import SparkSession

from lakehouse_dagster.engine.sessions import DEFAULT_CONF, spark_session
from lakehouse_dagster.engine.settings import EngineMode, EngineSettings


class SparkResource(LazyPySparkResource):
    """Hands assets a SparkSession: one engine per run, started on first use, stopped after.

    ``embedded`` (the default) starts a Sail server in this process; ``remote`` connects to
    any Spark Connect URL; ``classic_delta`` starts open-source Spark with delta-spark.
    """

    mode: Literal["embedded", "remote", "classic_delta"] = "embedded"
    remote_url: str | None = None
    master: str = "local[*]"
    spark_config: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_CONF))

    _stack: ExitStack | None = PrivateAttr(default=None)

    def engine_settings(self) -> EngineSettings:
        if self.mode == "remote" and not self.remote_url:
            raise ValueError("SparkResource: mode 'remote' needs remote_url (LAKEHOUSE_SPARK_REMOTE)")
        return EngineSettings(
            remote_url=self.remote_url if self.mode == "remote" else None,
            mode=EngineMode(self.mode),
            master=self.master,
        )

    def _init_session(self) -> None:
        if self._spark_session is None:
            self._stack = ExitStack()
            self._spark_session = self._stack.enter_context(
                spark_session(self.engine_settings(), self.spark_config)
            )

    def get_session(self) -> SparkSession:
        return self.spark_session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        stack, self._stack, self._spark_session = self._stack, None, None
        if stack is not None:
            stack.close()
