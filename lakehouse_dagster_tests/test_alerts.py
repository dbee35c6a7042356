"""Alerts: a failed blocking check and a failed run each give exactly one message, with the table,
the check, the failing count, sample keys and a link to the run. SNS is moto's, on 127.0.0.1, with
an SQS queue subscribed to the topic; Slack is a fake API on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import dagster as dg
import pandas as pd
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.alerts import (
    MAX_PENDING,
    RANGE_END,
    RANGE_START,
    AlertLedger,
    AlertNotSentError,
    PendingAlerts,
    dispatch,
    partition_of,
)
from lakehouse_dagster.deployment import AlertSeverity, Deployment, LakehouseSettings, MonitoringSettings
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.monitoring.alerts import check_alert, run_alert, table_of
from lakehouse_dagster.monitoring.notifier import Notifier, fifo_group_id

from . import registries
from .conftest import MotoServer
from .registries import REFUSAL
from .sns_topic import REGION, Subscriber, sns_notifier

OPERATIONS = "lakehouse_dagster_tests.registries:OPERATIONS"
DAGSTER_URL = "https://dagster.example.com"


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch) -> str:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    return moto_server.endpoint_url


@pytest.fixture
def subscriber(aws: str) -> Subscriber:
    return Subscriber(aws)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def defs(sail_url, layout) -> dg.Definitions:
    settings = LakehouseSettings(
        Deployment.TEST,
        layout,
        EngineSettings(remote_url=sail_url),
        monitoring=MonitoringSettings(dagster_url=DAGSTER_URL),
    )
    return build_definitions(settings, OPERATIONS)


def run_job(defs: dg.Definitions, instance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("operations_job").execute_in_process(instance=instance, raise_on_error=False)


def tick_checks(defs, instance, notifier: Notifier, cursor: str | None) -> str | None:
    """One tick of the check sensor; the cursor it leaves."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"notifier": notifier})
    defs.resolve_sensor_def("alert_on_failed_checks")(context)
    return context.cursor


def tick_run_failure(defs, instance, notifier: Notifier, cursor: str | None) -> str | None:
    """One tick of the run failure sensor; the cursor it leaves."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"notifier": notifier})
    defs.resolve_sensor_def("alert_on_run_failure")(context)
    return context.cursor


def test_a_failing_blocking_check_gives_exactly_one_sns_message(
    defs, instance, subscriber, aws, tmp_path, monkeypatch
) -> None:
    rows = [(1, "one"), (-7, "minus"), (2, "two"), (-3, "minus"), (-12, "minus"), (None, "none")]
    monkeypatch.setattr(registries, "NUMBER_ROWS", rows)
    notifier = sns_notifier(subscriber, aws, tmp_path)
    cursor = tick_checks(defs, instance, notifier, None)  # first tick: from now on
    run_cursor = tick_run_failure(defs, instance, notifier, None)

    result = run_job(defs, instance)
    assert not result.success
    after = tick_checks(defs, instance, notifier, cursor)
    tick_checks(defs, instance, notifier, cursor)  # a retried tick reads the same evaluations again
    tick_checks(defs, instance, notifier, after)
    tick_run_failure(defs, instance, notifier, run_cursor)  # failed on the check: no second alert
    tick_run_failure(defs, instance, notifier, run_cursor)

    (message,) = subscriber.messages()
    alert = message["Message"]
    frame = pd.DataFrame(rows, columns=["id", "label"])
    failing = frame[frame["id"] < 0]
    assert (alert["kind"], alert["table"], alert["check"], alert["severity"]) == (
        "check_failed",
        "silver.numbers",
        "id_not_negative",
        "ERROR",
    )
    assert alert["failing_count"] == len(failing)
    assert alert["sample_keys"] and set(alert["sample_keys"]) <= {str(int(i)) for i in failing["id"]}
    assert alert["run_id"] == result.run_id
    assert alert["run_url"] == f"{DAGSTER_URL}/runs/{result.run_id}"
    assert alert["identity"] == f"check:{result.run_id}:silver/silver.numbers:id_not_negative"
    assert message["Subject"].startswith("[lakehouse] check id_not_negative failed on silver.numbers")
    assert message["MessageAttributes"]["identity"]["Value"] == alert["identity"]
    # The local sink got the same alert, once.
    (line,) = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert json.loads(line) == alert


def test_a_failed_run_gives_exactly_one_sns_message(
    defs, instance, subscriber, aws, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(registries, "NUMBER_ROWS", [(1, "one"), (2, "two")])
    notifier = sns_notifier(subscriber, aws, tmp_path)
    cursor = tick_checks(defs, instance, notifier, None)
    run_cursor = tick_run_failure(defs, instance, notifier, None)

    result = run_job(defs, instance)
    assert not result.success
    tick_run_failure(defs, instance, notifier, run_cursor)
    tick_run_failure(defs, instance, notifier, run_cursor)  # the sensor sees the same failure again
    tick_checks(defs, instance, notifier, cursor)  # every check passed: nothing from checks

    (message,) = subscriber.messages()
    alert = message["Message"]
    assert (alert["kind"], alert["table"], alert["failed_steps"]) == (
        "run_failed",
        "gold.fails_downstream",
        ["gold__fails_downstream"],
    )
    assert REFUSAL in alert["error"]
    assert (alert["job"], alert["run_url"]) == ("operations_job", f"{DAGSTER_URL}/runs/{result.run_id}")
    assert alert["identity"] == f"run:{result.run_id}"


@pytest.mark.parametrize("severity", [AlertSeverity.ERROR, AlertSeverity.WARN])
def test_failed_warnings_alert_when_the_deployment_asks(
    sail_url, layout, instance, subscriber, aws, tmp_path, monkeypatch, severity
) -> None:
    monkeypatch.setattr(registries, "NUMBER_ROWS", [(1, "a label that is too long"), (2, "two")])
    settings = LakehouseSettings(
        Deployment.TEST,
        layout,
        EngineSettings(remote_url=sail_url),
        monitoring=MonitoringSettings(dagster_url=DAGSTER_URL, alert_severity=severity),
    )
    defs, notifier = build_definitions(settings, OPERATIONS), sns_notifier(subscriber, aws, tmp_path)
    cursor = tick_checks(defs, instance, notifier, None)
    run_job(defs, instance)
    tick_checks(defs, instance, notifier, cursor)
    if severity is AlertSeverity.ERROR:
        assert subscriber.messages() == [], "a failed warning does not alert by default"
        return
    (message,) = subscriber.messages()
    assert (message["Message"]["check"], message["Message"]["severity"]) == ("short_label", "WARN")
    assert message["Message"]["failing_count"] == 1


class FakeSlack:
    """Slack's Web API on 127.0.0.1: records chat.postMessage calls; ``failing`` answers 500."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.failing = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if fake.failing:
                    self.send_response(500)
                    self.end_headers()
                    return
                fields = (
                    json.loads(body) if body.startswith("{") else {k: v[0] for k, v in parse_qs(body).items()}
                )
                fake.posts.append({"path": self.path, "auth": self.headers.get("Authorization"), **fields})
                payload = json.dumps({"ok": True, "channel": fields.get("channel"), "ts": "1.0"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sns_and_slack(subscriber: Subscriber, aws: str, slack: FakeSlack) -> Notifier:
    return Notifier(
        sns_topic_arn=subscriber.topic_arn,
        region_name=REGION,
        endpoint_url=aws,
        slack_channel="#lakehouse-alerts",
        slack_token="xoxb-test",
        slack_api_url=slack.url,
    )


def test_a_destination_that_fails_gets_the_alert_on_retry_and_the_others_get_it_once(
    instance, subscriber, aws, tmp_path
) -> None:
    slack = FakeSlack()
    try:
        notifier = sns_and_slack(subscriber, aws, slack)
        alert = check_alert(
            run_id="r1",
            asset_path=["silver", "orders"],
            check="primary_key",
            severity="ERROR",
            metadata={"rows": 10, "null_keys": 1, "duplicate_rows": 2, "sample_duplicate_keys": ["7", "9"]},
            description="1 rows with a null key and 2 duplicate rows",
            partition=None,
            job="lakehouse_job",
            run_url=f"{DAGSTER_URL}/runs/r1",
            occurred_at="2026-11-26T05:00:00+00:00",
        )
        ledger, log = AlertLedger(instance), dg.get_dagster_logger()
        slack.failing = True
        with pytest.raises(AlertNotSentError, match="slack"):
            dispatch(alert, notifier, ledger, log)
        slack.failing = False
        assert dispatch(alert, notifier, ledger, log) == ["slack"]
        assert dispatch(alert, notifier, ledger, log) == []

        assert len(subscriber.messages()) == 1
        (post,) = slack.posts
        assert post["path"].endswith("chat.postMessage") and post["channel"] == "#lakehouse-alerts"
        assert post["auth"] == "Bearer xoxb-test"
        assert "check primary_key failed on silver.orders (3 failing)" in post["text"]
        assert "sample keys: 7, 9" in post["text"] and f"{DAGSTER_URL}/runs/r1" in post["text"]
    finally:
        slack.close()


def test_a_run_alert_that_sns_refused_is_sent_on_a_later_tick_once(
    defs, instance, subscriber, aws, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(registries, "NUMBER_ROWS", [(1, "one"), (2, "two")])
    notifier = sns_notifier(subscriber, aws, tmp_path)
    unreachable = Notifier(  # the same destinations, but SNS refuses: the topic is gone
        sns_topic_arn=subscriber.topic_arn + "-deleted",
        region_name=REGION,
        endpoint_url=aws,
        file_path=str(tmp_path / "alerts.jsonl"),
    )
    cursor = tick_run_failure(defs, instance, notifier, None)
    result = run_job(defs, instance)
    assert not result.success

    cursor = tick_run_failure(defs, instance, unreachable, cursor)
    assert subscriber.messages() == []
    cursor = tick_run_failure(defs, instance, notifier, cursor)  # no new failure, SNS is back
    tick_run_failure(defs, instance, notifier, cursor)

    (message,) = subscriber.messages()
    assert message["Message"]["identity"] == f"run:{result.run_id}"
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [line["identity"] for line in lines] == [f"run:{result.run_id}"], "the file got it once"


def test_a_destination_that_keeps_failing_does_not_hold_back_later_alerts(
    defs, instance, subscriber, aws, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(registries, "NUMBER_ROWS", [(1, "one"), (-2, "minus")])
    slack = FakeSlack()
    try:
        notifier = sns_and_slack(subscriber, aws, slack)
        cursor = tick_checks(defs, instance, notifier, None)
        slack.failing = True
        runs = []
        for _ in range(3):
            runs.append(run_job(defs, instance).run_id)
            cursor = tick_checks(defs, instance, notifier, cursor)
        assert sorted(m["Message"]["run_id"] for m in subscriber.messages()) == sorted(runs)
        assert slack.posts == []

        slack.failing = False
        cursor = tick_checks(defs, instance, notifier, cursor)
        tick_checks(defs, instance, notifier, cursor)

        assert len(slack.posts) == 3 and all(any(run in post["text"] for run in runs) for post in slack.posts)
        assert len(subscriber.messages()) == 3, "SNS got each alert once"
    finally:
        slack.close()


@pytest.mark.parametrize(
    ("tags", "partition"),
    [
        ({"dagster/partition": "2026-06-05"}, "2026-06-05"),
        ({RANGE_START: "2026-06-01", RANGE_END: "2026-06-03"}, "2026-06-01..2026-06-03"),
        ({RANGE_START: "2026-06-01", RANGE_END: "2026-06-01"}, "2026-06-01"),
        ({}, None),
    ],
)
def test_an_alert_names_the_partition_or_the_range_of_its_run(tags: dict, partition: str | None) -> None:
    assert partition_of(tags) == partition


@pytest.mark.parametrize(
    "tables", [["silver.orders"], ["silver.orders", "silver.order_items"], ["t" * 60] * 5]
)
def test_a_fifo_group_id_is_one_that_sns_accepts(tables: list[str]) -> None:
    alert = run_alert(
        run_id="r1",
        job="sales_job",
        failed_steps=[],
        tables=tables,
        error="boom",
        partition=None,
        run_url=None,
        occurred_at="2026-11-29T00:00:00+00:00",
    )
    group = fifo_group_id(alert)
    # Publish's rule: 1 to 128 characters, letters, digits and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~).
    assert re.fullmatch(r"[A-Za-z0-9!-/:-@\[-`{-~]{1,128}", group), group
    assert group.startswith(tables[0])


@pytest.mark.parametrize(
    ("parts", "table"),
    [
        (["silver", "silver.customers"], "silver.customers"),  # an asset key
        (["silver", "customers"], "silver.customers"),  # a step key, silver__customers
        (["maintenance", "silver", "maintenance.silver.customers"], "silver.customers"),
        (["maintenance", "silver", "customers"], "silver.customers"),  # maintenance__silver__customers
        (["serving", "serving.daily_sales"], "serving.daily_sales"),
    ],
)
def test_an_alert_names_the_table_of_an_asset_key_or_a_step(parts: list[str], table: str) -> None:
    assert table_of(parts) == table


def test_a_cursor_of_the_earlier_run_failure_sensor_replays_nothing(
    defs, instance, subscriber, aws, tmp_path, monkeypatch
) -> None:
    """Dagster keeps a sensor's cursor across code versions: the run-failure sensor's own format
    must start from now, not read every failure ever recorded."""
    monkeypatch.setattr(registries, "NUMBER_ROWS", [(1, "one"), (2, "two")])
    notifier = sns_notifier(subscriber, aws, tmp_path)
    run_job(defs, instance)  # failed before the upgrade
    earlier = json.dumps({"__class__": "RunStatusSensorCursor", "record_id": 3, "update_timestamp": "x"})

    cursor = tick_run_failure(defs, instance, notifier, earlier)
    tick_run_failure(defs, instance, notifier, cursor)
    assert subscriber.messages() == []
    result = run_job(defs, instance)
    tick_run_failure(defs, instance, notifier, cursor)
    assert [m["Message"]["run_id"] for m in subscriber.messages()] == [result.run_id]


def test_pending_alerts_are_bounded_and_read_back_across_versions(instance) -> None:
    pending, log = PendingAlerts(instance, "a_sensor"), dg.get_dagster_logger()
    alerts = [
        run_alert(
            run_id=f"r{i:04d}",
            job="j",
            failed_steps=[],
            tables=["silver.t"],
            error="e",
            partition=None,
            run_url=None,
            occurred_at=f"2026-11-29T00:{i // 60:02d}:{i % 60:02d}+00:00",
        )
        for i in range(MAX_PENDING + 5)
    ]
    pending.save(alerts, log)
    kept = pending.load(log)
    assert [a.run_id for a in kept] == [a.run_id for a in alerts[5:]], "the newest kept"

    stored = [
        {**alerts[0].to_dict(), "channel": "#added-by-a-later-version"},
        {"kind": "run_failed"},
        "not an alert",
        {**alerts[1].to_dict(), "occurred_at": None},
    ]
    instance.run_storage.set_cursor_values({pending.key: json.dumps(stored)})
    loaded = pending.load(log)
    assert [a.run_id for a in loaded] == [alerts[0].run_id, alerts[1].run_id], (
        "unknown fields ignored, junk dropped"
    )
    pending.save(loaded, log)  # an alert without a time sorts first, and is kept
