"""``alert_on_stale_tables``: Dagster's own freshness daemon evaluates a table's freshness policy
at chosen instants, and the sensor's alerts reach an SNS topic's subscriber on a moto server."""

from __future__ import annotations

import shutil
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.load_target import PythonFileTarget
from dagster._daemon.freshness import FreshnessDaemon

from lakehouse_dagster.defs.freshness_alerts import freshness_alert_sensor
from lakehouse_dagster.monitoring.notifier import Notifier
from lakehouse_dagster.quality.checks import Severity

from .conftest import MotoServer
from .sns_topic import Subscriber, sns_notifier

REPO = Path(__file__).resolve().parents[1]
WARN_AFTER, FAIL_AFTER = 3600, 7200
TINY_TABLE = f"""
from datetime import timedelta

import dagster as dg


@dg.asset(
    key=["gold", "gold.tiny"],
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(seconds={FAIL_AFTER}), warn_window=timedelta(seconds={WARN_AFTER})
    ),
)
def tiny() -> int:
    return 1


defs = dg.Definitions(assets=[tiny])
"""


class Daemon:
    """Dagster's freshness daemon over a code location of one table, run one iteration at a time."""

    def __init__(self, folder: Path, instance: dg.DagsterInstance) -> None:
        self.file = folder / "tiny_table.py"
        self.file.write_text(textwrap.dedent(TINY_TABLE))
        self.instance = instance

    @contextmanager
    def started(self) -> Iterator[Daemon]:
        target = PythonFileTarget(str(self.file), "defs", str(self.file.parent), None)
        with create_test_daemon_workspace_context(target, self.instance) as context:
            self.context = context
            yield self

    def evaluate_at(self, timestamp: float) -> None:
        with freeze_time(timestamp):
            list(FreshnessDaemon().run_iteration(self.context))

    def materialize(self) -> float:
        namespace: dict = {}
        exec(self.file.read_text(), namespace)
        assert dg.materialize([namespace["tiny"]], instance=self.instance).success
        return time.time()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(overrides={"freshness": {"enabled": True}}) as test_instance:
        yield test_instance


@pytest.fixture
def subscriber(moto_server: MotoServer) -> Subscriber:
    return Subscriber(moto_server.endpoint_url)


@pytest.fixture
def notifier(subscriber: Subscriber, moto_server: MotoServer, tmp_path: Path) -> Notifier:
    return sns_notifier(subscriber, moto_server.endpoint_url, tmp_path)


def tick(sensor: dg.SensorDefinition, instance, notifier: Notifier, cursor: str | None) -> str | None:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"notifier": notifier})
    sensor(context)
    return context.cursor


@pytest.mark.parametrize(
    "minimum, expected",
    [
        (Severity.ERROR, [("table_stale", "FAIL", "ERROR"), ("table_fresh_again", "PASS", None)]),
        (
            Severity.WARN,
            [
                ("table_stale", "WARN", "WARN"),
                ("table_stale", "FAIL", "ERROR"),
                ("table_fresh_again", "PASS", None),
            ],
        ),
    ],
)
def test_a_table_nothing_materialises_alerts_once_and_again_when_it_is_fresh(
    instance, subscriber, notifier, tmp_path, minimum, expected
) -> None:
    sensor = freshness_alert_sensor(minimum)
    with Daemon(tmp_path, instance).started() as daemon:
        materialised = daemon.materialize()
        cursor = tick(sensor, instance, notifier, None)  # first tick: from now on
        daemon.evaluate_at(materialised + WARN_AFTER / 2)  # UNKNOWN -> PASS: nothing to say
        cursor = tick(sensor, instance, notifier, cursor)
        daemon.evaluate_at(materialised + WARN_AFTER + 60)  # WARN
        daemon.evaluate_at(materialised + WARN_AFTER + 120)  # still WARN: no change recorded
        cursor = tick(sensor, instance, notifier, cursor)
        daemon.evaluate_at(materialised + FAIL_AFTER + 60)  # FAIL
        stale_cursor = cursor
        cursor = tick(sensor, instance, notifier, cursor)
        tick(sensor, instance, notifier, stale_cursor)  # a retried tick alerts nothing twice
        daemon.materialize()
        daemon.evaluate_at(time.time())  # PASS again
        tick(sensor, instance, notifier, cursor)

    alerts = [message["Message"] for message in subscriber.messages()]
    assert [(a["kind"], a["summary"].split("freshness ")[1][:4], a["severity"]) for a in alerts] == expected
    assert {alert["table"] for alert in alerts} == {"gold.tiny"}
    assert len({alert["identity"] for alert in alerts}) == len(alerts)
    stale = [alert for alert in alerts if alert["kind"] == "table_stale"]
    latest = instance.get_latest_materialization_event(dg.AssetKey(["gold", "gold.tiny"]))
    assert all(alert["summary"].startswith("gold.tiny is stale") for alert in stale)
    assert all("last materialised" in alert["summary"] for alert in stale)
    assert latest is not None and alerts[-1]["summary"].startswith("gold.tiny is fresh again")


def test_a_failed_table_that_only_warns_now_is_no_longer_stale_when_failures_alone_alert(
    instance, subscriber, notifier, tmp_path
) -> None:
    sensor = freshness_alert_sensor(Severity.ERROR)
    with Daemon(tmp_path, instance).started() as daemon:
        materialised = daemon.materialize()
        cursor = tick(sensor, instance, notifier, None)
        daemon.evaluate_at(materialised + FAIL_AFTER + 60)  # FAIL
        cursor = tick(sensor, instance, notifier, cursor)
        again = daemon.materialize()
        daemon.evaluate_at(again + WARN_AFTER + 60)  # FAIL -> WARN: materialised, later than it should
        tick(sensor, instance, notifier, cursor)

    alerts = [message["Message"] for message in subscriber.messages()]
    assert [(a["kind"], a["summary"].split("freshness ")[1][:12]) for a in alerts] == [
        ("table_stale", "FAIL, was UN"),  # its first evaluation
        ("table_fresh_again", "WARN, was FA"),
    ]


def test_the_first_tick_alerts_on_nothing_that_happened_before_it(
    instance, subscriber, notifier, tmp_path
) -> None:
    sensor = freshness_alert_sensor(Severity.WARN)
    with Daemon(tmp_path, instance).started() as daemon:
        materialised = daemon.materialize()
        daemon.evaluate_at(materialised + FAIL_AFTER + 60)
        cursor = tick(sensor, instance, notifier, None)
        tick(sensor, instance, notifier, cursor)
    assert subscriber.messages() == []


def test_the_shipped_instances_run_the_freshness_daemon(tmp_path, monkeypatch) -> None:
    for config in (REPO / "dagster.yaml", REPO / "infra" / "dagster" / "dagster.yaml"):
        text = config.read_text()
        assert "freshness:\n  enabled: true" in text, config
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.freshness_enabled
