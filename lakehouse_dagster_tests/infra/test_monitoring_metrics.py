"""The CloudWatch alarms and dashboard of ``infra/modules/monitoring`` watch the metrics the code
publishes: the names and dimension sets of ``lakehouse_dagster/monitoring/metrics.py``, in the
namespace the Dagster deployment is given, and the alerts go to the topic the alarms notify."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from lakehouse_dagster.monitoring.metrics import METRICS, SPECS

from .terraform_config import (
    REPO_ROOT,
    child_module,
    decode_call,
    policy_statements,
    root_module,
    text,
)

NAMESPACE = "var.metrics_namespace"
#: A SEARCH expression: {namespace,dimension,...} MetricName="name".
_SEARCH = re.compile(
    r"SEARCH\('\{(?P<schema>(?:\$\{[^}]*\}|[^}])*)\}\s+MetricName=\\?\"(?P<name>[A-Za-z]+)\\?\""
)


def _ours(namespace: str) -> bool:
    return text(namespace).removeprefix("${").removesuffix("}") == NAMESPACE


def alarm_metrics() -> list[tuple[str, frozenset[str], str]]:
    """(metric, dimension names, alarm) of every alarm on the lakehouse's namespace."""
    found = []
    for alarm in child_module("monitoring").resources("aws_cloudwatch_metric_alarm").values():
        if _ours(alarm.get("namespace")):
            dimensions = alarm.get("dimensions") or {}
            found.append((text(alarm.get("metric_name")), frozenset(map(text, dimensions)), alarm.address))
    return found


def _widgets() -> list[Mapping[str, Any]]:
    (dashboard,) = child_module("monitoring").resources("aws_cloudwatch_dashboard").values()
    body = decode_call(dashboard.get("dashboard_body"))
    assert isinstance(body, Mapping), "dashboard_body must be jsonencode({...})"
    return list(body["widgets"])


def dashboard_metrics() -> Iterator[tuple[str, frozenset[str]]]:
    """(metric, dimension names) of every dashboard series on the lakehouse's namespace: metric
    arrays [namespace, name, dimension, value, ..., {options}] and SEARCH expressions."""
    for widget in _widgets():
        for series in widget.get("properties", {}).get("metrics", []):
            plain = [item for item in series if not isinstance(item, Mapping)]
            if plain and _ours(plain[0]):
                dimension_names = plain[2::2]
                yield text(plain[1]), frozenset(text(name) for name in dimension_names)
            for item in series:
                if isinstance(item, Mapping) and "expression" in item:
                    match = _SEARCH.search(text(item["expression"]))
                    assert match, f"unexpected dashboard expression {item['expression']!r}"
                    namespace, *dimensions = [part.strip() for part in match["schema"].split(",")]
                    assert namespace.strip("${}") == NAMESPACE, namespace
                    yield match["name"], frozenset(dimensions)


def declared(name: str) -> set[frozenset[str]]:
    return {frozenset(dimensions) for dimensions in SPECS[name].dimensions}


def test_the_alarms_watch_declared_metrics_with_declared_dimensions() -> None:
    alarms = alarm_metrics()
    assert {name for name, _, _ in alarms} == {
        "FreshnessLag",
        "RowsWritten",
        "ExpectationFailureRatio",
        "MaterializationDuration",
    }
    for name, dimensions, address in alarms:
        assert name in SPECS, f"{address}: {name} is not a metric the code publishes"
        assert dimensions in declared(name), f"{address}: {name} is not published with {sorted(dimensions)}"


def test_the_dashboard_shows_every_declared_metric_and_nothing_else() -> None:
    shown = list(dashboard_metrics())
    for name, dimensions in shown:
        assert name in SPECS, f"the dashboard shows {name}, which the code does not publish"
        assert dimensions in declared(name), f"{name} is not published with {sorted(dimensions)}"
    assert {name for name, _ in shown} == {spec.name for spec in METRICS}


def test_the_metrics_namespace_and_the_alert_topic_are_the_ones_the_deployment_gets() -> None:
    root = root_module()
    wiring = {key: text(value) for key, value in root.locals["wiring"].items()}
    outputs = {key: text(value) for key, value in root.locals["dagster_env_outputs"].items()}
    monitoring = root.module_calls["monitoring"]
    assert wiring[outputs["LAKEHOUSE_METRICS_NAMESPACE"]] == text(monitoring.get("metrics_namespace"))
    assert text(root.module_calls["iam"].get("metrics_namespace")) == text(
        monitoring.get("metrics_namespace")
    )
    assert wiring[outputs["LAKEHOUSE_ALERTS_TOPIC_ARN"]] == "module.monitoring.alarm_topic_arn"
    assert (
        text(child_module("monitoring").outputs["alarm_topic_arn"].get("value")) == "aws_sns_topic.alarms.arn"
    )
    assert text(root.module_calls["iam"].get("alarm_topic_arn")) == "module.monitoring.alarm_topic_arn"


def test_the_dagster_role_publishes_alerts_to_the_topic_and_metrics_in_the_namespace_only() -> None:
    statements = [
        s
        for s in policy_statements()
        if s.source == "modules/iam: data.aws_iam_policy_document.dagster_monitoring"
    ]
    by_action = {action: statement for statement in statements for action in statement.actions}
    assert set(by_action) == {"sns:Publish", "kms:GenerateDataKey", "kms:Decrypt", "cloudwatch:PutMetricData"}
    assert by_action["sns:Publish"].resources == ("var.alarm_topic_arn",)
    put = by_action["cloudwatch:PutMetricData"]
    assert put.conditions == (("StringEquals", "cloudwatch:namespace", ("var.metrics_namespace",)),)
    kms = by_action["kms:GenerateDataKey"]
    assert kms.resources == ("var.platform_kms_key_arn",)
    assert kms.conditions == (("StringEquals", "kms:ViaService", ("sns.${local.region}.amazonaws.com",)),)


def test_a_stream_nobody_reads_alarms_though_no_read_publishes_an_iterator_age() -> None:
    """The iterator-age alarm needs GetRecords calls to publish its metric; this one alarms when
    no GetRecords call succeeds in a window (missing data breaches), on the stream the consumer
    reads with GetRecords every interval."""
    alarm = child_module("monitoring").resources("aws_cloudwatch_metric_alarm")["kinesis_not_read"]
    assert (text(alarm.get("namespace")), text(alarm.get("metric_name"))) == (
        "AWS/Kinesis",
        "GetRecords.Success",
    )
    assert {key: text(value) for key, value in alarm.get("dimensions").items()} == {
        "StreamName": "var.kinesis_stream_name"
    }
    assert (text(alarm.get("statistic")), text(alarm.get("comparison_operator")), alarm.get("threshold")) == (
        "SampleCount",
        "LessThanThreshold",
        1,
    )
    assert text(alarm.get("period")) == "var.kinesis_unread_window_seconds"
    assert text(alarm.get("treat_missing_data")) == "breaching"  # no read at all: no datapoint
    reader = (REPO_ROOT / "lakehouse_dagster/stream/kinesis.py").read_text()
    sensor = (REPO_ROOT / "lakehouse_dagster/defs/stream_sensor.py").read_text()
    assert "get_records" in reader and "every ``LAKEHOUSE_STREAM_INTERVAL_SECONDS``" in sensor
