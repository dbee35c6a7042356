"""Spark sessions without Dagster: an embedded Sail server or any Spark Connect URL.

The separate-process unit runner (``python -m lakehouse_dagster.units``) uses this module
directly; the Dagster resource in ``engine/resource.py`` wraps it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from lakehouse_dagster.deployment import quiet_engine_logs
from lakehouse_dagster.engine.settings import EngineSettings


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


def connect(remote_url: str) -> SparkSession:
    """A new Connect session (not the process-wide default), so that closing it is ours to do."""
    return SparkSession.builder.remote(remote_url).config("spark.sql.session.timeZone", "UTC").create()


@contextmanager
def spark_session(settings: EngineSettings) -> Iterator[SparkSession]:
    """Yield a session; on exit stop the session first, then the embedded server if we started one.

    Stopping the server before the session makes the client retry for about 20 s.
    """
    server = None
    remote_url = settings.remote_url
    if remote_url is None:
        server = EmbeddedSail()
        remote_url = server.start()
    try:
        session = connect(remote_url)
        try:
            yield session
        finally:
            session.stop()
    finally:
        if server is not None:
            server.stop()
