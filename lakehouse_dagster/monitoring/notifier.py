"""The alert seam: where alerts go. SNS in production (the alarm topic of ``infra/modules/monitoring``),
Slack besides it when a channel and a token are given (through dagster-slack), a JSON-lines file
locally, and always the log.

``destinations()`` names where an alert goes; ``send(destination, alert)`` sends it there. The
sensors record each (alert, destination) sent, so that a retry after a partial failure sends
only what is missing (``defs/alerts.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from lakehouse_dagster.monitoring.alerts import Alert

SNS, SLACK, FILE, LOG = "sns", "slack", "file", "log"
#: SNS's limit on a FIFO message's group id.
MAX_GROUP_ID = 128
_LOG = logging.getLogger("lakehouse_dagster.alerts")


def fifo_group_id(alert: Alert) -> str:
    """The alert's table (or ``lakehouse``) as a FIFO message group: at most 128 characters,
    letters, digits and ASCII punctuation only (a run alert's ``a, b`` becomes ``a,_b``)."""
    return re.sub(r"[^!-~]", "_", alert.table or "lakehouse")[:MAX_GROUP_ID]


class Notifier(dg.ConfigurableResource):
    """Sends alerts to every destination it is configured with (and to the log)."""

    sns_topic_arn: str | None = None
    region_name: str | None = None
    #: Tests point the SNS client at a moto server.
    endpoint_url: str | None = None
    slack_channel: str | None = None
    #: A Slack bot token (production: read from LAKEHOUSE_SLACK_TOKEN at run time).
    slack_token: str | None = None
    #: Tests point the Slack client at a fake API on 127.0.0.1.
    slack_api_url: str | None = None
    #: A JSON-lines file that collects alerts (local and test deployments).
    file_path: str | None = None

    _sns: Any = PrivateAttr(default=None)

    def destinations(self) -> list[str]:
        found = [SNS] if self.sns_topic_arn else []
        if self.slack_channel and self.slack_token:
            found.append(SLACK)
        if self.file_path:
            found.append(FILE)
        return [*found, LOG]

    def send(self, destination: str, alert: Alert) -> None:
        {SNS: self._to_sns, SLACK: self._to_slack, FILE: self._to_file, LOG: self._to_log}[destination](alert)

    def _to_sns(self, alert: Alert) -> None:
        """One message: JSON for queues, functions and HTTP subscribers, text for e-mail. A FIFO
        topic also deduplicates by the alert's identity."""
        if self._sns is None:
            import boto3

            self._sns = boto3.client("sns", region_name=self.region_name, endpoint_url=self.endpoint_url)
        assert self.sns_topic_arn is not None
        body = alert.to_json()
        message = {"default": body, "sqs": body, "lambda": body, "http": body, "https": body}
        message["email"] = message["email-json"] = alert.text()
        attributes = {
            "identity": alert.identity,
            "kind": alert.kind,
            **({"table": alert.table} if alert.table else {}),
        }
        extra: dict[str, Any] = {}
        if self.sns_topic_arn.endswith(".fifo"):
            extra["MessageGroupId"] = fifo_group_id(alert)
            extra["MessageDeduplicationId"] = hashlib.sha256(alert.identity.encode()).hexdigest()
        self._sns.publish(
            TopicArn=self.sns_topic_arn,
            Subject=alert.subject(),
            Message=json.dumps(message),
            MessageStructure="json",
            MessageAttributes={
                key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
            },
            **extra,
        )

    def _to_slack(self, alert: Alert) -> None:
        from dagster_slack import SlackResource

        assert self.slack_token is not None
        client = SlackResource(token=self.slack_token).get_client()
        if self.slack_api_url:
            client.base_url = self.slack_api_url
        client.chat_postMessage(channel=self.slack_channel, text=alert.text())

    def _to_file(self, alert: Alert) -> None:
        assert self.file_path is not None
        os.makedirs(os.path.dirname(os.path.abspath(self.file_path)), exist_ok=True)
        with open(self.file_path, "a", encoding="utf-8") as file:
            file.write(alert.to_json() + "\n")

    def _to_log(self, alert: Alert) -> None:
        _LOG.warning("ALERT %s: %s", alert.identity, alert.summary)
