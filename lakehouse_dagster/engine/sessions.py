"""Spark sessions without Dagster: an embedded Sail server, any Spark Connect URL, or classic
Spark with delta-spark.

The separate-process unit runner (``python -m lakehouse_dagster.units``) uses this module
directly; the Dagster resource in ``engine/resource.py`` wraps it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession

from lakehouse_dagster.deployment import quiet_engine_logs
from lakehouse_dagster.engine.settings import EngineMode, EngineSettings

#: Every session computes dates and timestamps in UTC.
DEFAULT_CONF: Mapping[str, Any] = {"spark.sql.session.timeZone": "UTC"}
#: What makes a classic Spark session a Delta one (besides the jars).
DELTA_CONF: Mapping[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class EmbeddedSail:
    """A Sail Spark Connect server in this process, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        quiet_engine_logs()
        from pysail.spark import SparkConnectServer

        self._server = SparkConnectServer("127.0.0.1", 0)
        self._running = False

    def start(self) -> str:
        self._server.start(background=True)
        self._running = True
        host, port = self._server.listening_address
        return f"sc://{host}:{port}"

    def stop(self) -> None:
        if self._running:
            self._server.stop()
            self._running = False


def connect(remote_url: str, conf: Mapping[str, Any] = DEFAULT_CONF) -> SparkSession:
    """A new Connect session (not the process-wide default), so that closing it is ours to do."""
    builder = SparkSession.builder.remote(remote_url)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.create()


def classic_delta_builder(master: str, conf: Mapping[str, Any] = DEFAULT_CONF) -> SparkSession.Builder:
    """A classic (JVM) Spark session builder with Delta: delta-spark's own
    ``configure_spark_with_delta_pip`` adds the Delta jars matching the installed delta-spark
    (downloaded from Maven when the session starts), then the Delta SQL extension and catalog.
    A Spark Connect server for Delta needs the same settings on the server side instead."""
    from delta import configure_spark_with_delta_pip

    builder = SparkSession.builder.master(master).appName("lakehouse_dagster")
    for key, value in {**DELTA_CONF, **conf}.items():
        builder = builder.config(key, value)
    return configure_spark_with_delta_pip(builder)


@contextmanager
def spark_session(settings: EngineSettings, conf: Mapping[str, Any] = DEFAULT_CONF) -> Iterator[SparkSession]:
    """Yield a session; on exit stop the session first, then the embedded server if we started one.

    Stopping the server before the session makes the client retry for about 20 s.
    """
    if settings.mode is EngineMode.CLASSIC_DELTA:
        session = classic_delta_builder(settings.master, conf).getOrCreate()
        try:
            yield session
        finally:
            session.stop()
        return
    server = None
    remote_url = settings.remote_url
    if settings.mode is EngineMode.EMBEDDED:
        server = EmbeddedSail()
        remote_url = server.start()
    assert remote_url is not None
    try:
        session = connect(remote_url, conf)
        try:
            yield session
        finally:
            session.stop()
    finally:
        if server is not None:
            server.stop()
