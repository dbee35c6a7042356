"""The engine seam: sessions on an embedded Sail server or a Spark Connect URL, cleanly stopped."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_dagster.engine import sessions
from lakehouse_dagster.engine.resource import SparkResource
from lakehouse_dagster.engine.sessions import EmbeddedSail, spark_session
from lakehouse_dagster.engine.settings import EngineSettings


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def engine_threads() -> int:
    """Threads of the Rust engine (its runtime's workers are named tokio-*)."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    return sum((task / "comm").read_text().startswith("tokio") for task in tasks.iterdir())


def test_embedded_session_runs_queries_and_frees_its_port_and_threads() -> None:
    ports = []
    before = set(threading.enumerate())  # an earlier test's thread may end meanwhile: compare sets
    thread_counts = []
    for _ in range(3):
        with spark_session(EngineSettings()) as spark:
            assert spark.range(5).selectExpr("sum(id) AS total").first()["total"] == 10
            ports.append(_port_of(spark))
            assert port_is_open(ports[-1])
        assert not port_is_open(ports[-1]), "the embedded server must stop with the session"
        assert set(threading.enumerate()) - before == set(), "no Python thread outlives the session"
        thread_counts.append(engine_threads())
    assert len(set(thread_counts)) == 1, f"engine threads grew across sessions: {thread_counts}"


def _port_of(spark) -> int:
    return int(spark.client._builder.endpoint.rsplit(":", 1)[1])


def test_the_session_stops_before_the_server(monkeypatch) -> None:
    events: list[str] = []

    class RecordingServer(EmbeddedSail):
        def stop(self) -> None:
            events.append("server")
            super().stop()

    monkeypatch.setattr(sessions, "EmbeddedSail", RecordingServer)
    with spark_session(EngineSettings()) as spark:
        original_stop = spark.stop
        monkeypatch.setattr(spark, "stop", lambda: (events.append("session"), original_stop()))

    assert events == ["session", "server"]


def test_remote_mode_connects_to_a_given_url(sail_url) -> None:
    with spark_session(EngineSettings(remote_url=sail_url)) as spark:
        assert spark.range(3).count() == 3
    assert port_is_open(int(sail_url.rsplit(":", 1)[1])), "a remote server is not ours to stop"


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="sc://"):
        EngineSettings(remote_url="http://localhost:15002")
    with pytest.raises(ValueError, match="remote_url"):
        SparkResource(mode="remote").engine_settings()


def test_resource_starts_one_engine_per_run_and_stops_it_after() -> None:
    seen_ports: list[int] = []

    @dg.asset
    def first(spark: SparkResource) -> None:
        session = spark.get_session()
        seen_ports.append(_port_of(session))
        assert session.range(2).count() == 2

    @dg.asset(deps=[first])
    def second(spark: SparkResource) -> None:
        seen_ports.append(_port_of(spark.get_session()))

    result = dg.materialize([first, second], resources={"spark": SparkResource()})

    assert result.success
    assert len(set(seen_ports)) == 1, "both assets share the run's engine"
    assert not port_is_open(seen_ports[0])


# dagster-pyspark and delta-spark ------------------------------------------------------------------


def test_the_engine_resource_is_dagster_pysparks_lazy_resource_and_starts_nothing_unused(monkeypatch) -> None:
    from dagster_pyspark import LazyPySparkResource

    started: list[object] = []

    class RecordingServer(EmbeddedSail):
        def start(self) -> str:
            started.append(self)
            return super().start()

    monkeypatch.setattr(sessions, "EmbeddedSail", RecordingServer)

    @dg.asset
    def no_spark_needed(spark: SparkResource) -> None:
        assert isinstance(spark, LazyPySparkResource)

    @dg.asset
    def spark_needed(spark: SparkResource) -> None:
        assert spark.get_session().range(1).count() == 1

    assert dg.materialize([no_spark_needed], resources={"spark": SparkResource()}).success
    assert started == [], "a run that never asks for the session starts no engine"
    assert dg.materialize([spark_needed], resources={"spark": SparkResource()}).success
    assert len(started) == 1


def test_spark_config_reaches_the_session(sail_url) -> None:
    resource = SparkResource(
        mode="remote", remote_url=sail_url, spark_config={"spark.sql.session.timeZone": "America/Lima"}
    )
    try:
        session = resource.get_session()
        assert session.conf.get("spark.sql.session.timeZone") == "America/Lima"
    finally:
        resource.close()


def test_classic_spark_with_delta_gets_the_delta_jars_extension_and_catalog() -> None:
    import delta
    import pyspark

    from lakehouse_dagster.engine.sessions import classic_delta_builder

    options = classic_delta_builder("local[2]")._options

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta_version = delta.__version__ if hasattr(delta, "__version__") else _installed("delta_spark")
    assert options["spark.jars.packages"] == f"io.delta:delta-spark_{spark_minor}_2.13:{delta_version}"
    assert options["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert options["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert options["spark.master"] == "local[2]"
    assert options["spark.sql.session.timeZone"] == "UTC"


def _installed(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def test_the_classic_engine_is_chosen_by_the_deployment() -> None:
    from lakehouse_dagster.definitions import build_definitions
    from lakehouse_dagster.deployment import LakehouseSettings

    settings = LakehouseSettings.from_env(
        {"LAKEHOUSE_ENGINE": "classic_delta", "LAKEHOUSE_SPARK_MASTER": "yarn"}
    )
    spark = build_definitions(settings).resources["runner"].spark
    assert (spark.mode, spark.master) == ("classic_delta", "yarn")


class _Conf:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)


class _ClassicSession:
    """Stands in for a classic (JVM) session: what the capability switch asks of one."""

    def __init__(self, conf: dict[str, str]) -> None:
        self.conf = _Conf(conf)

    def sql(self, _query: str):
        class _Rows:
            def first(self):
                return ("spark_catalog",)

        return _Rows()


def test_the_delta_log_backend_is_picked_by_what_the_engine_can_do(spark) -> None:
    from lakehouse_dagster.lake.delta import DeltaRsLog, DeltaSparkLog, SparkSqlLog, log_backend_for

    with_delta = _ClassicSession({"spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension"})
    without_delta = _ClassicSession({})

    assert type(log_backend_for(spark)) is DeltaRsLog, "Sail: delta-rs"
    assert type(log_backend_for(with_delta)) is DeltaSparkLog, "classic Spark with Delta: delta-spark's API"
    assert type(log_backend_for(without_delta)) is SparkSqlLog, "anything else: Spark SQL"
