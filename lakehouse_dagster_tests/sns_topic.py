"""An SQS queue subscribed to an SNS topic on the moto server: what an alert topic's subscribers
receive."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3

from lakehouse_dagster.monitoring.notifier import Notifier

REGION = "us-east-1"


class Subscriber:
    """An SQS queue subscribed to an SNS topic: what the topic's subscribers receive."""

    def __init__(self, endpoint: str) -> None:
        name = f"alerts-{uuid.uuid4().hex[:12]}"
        sns = boto3.client("sns", region_name=REGION, endpoint_url=endpoint)
        self.sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
        self.topic_arn = sns.create_topic(Name=name)["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self.received: list[dict] = []

    def messages(self) -> list[dict]:
        """Every message delivered so far (SNS envelopes, their ``Message`` parsed)."""
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return self.received
            for message in batch:
                envelope = json.loads(message["Body"])
                self.received.append({**envelope, "Message": json.loads(envelope["Message"])})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def sns_notifier(subscriber: Subscriber, aws: str, tmp_path: Path) -> Notifier:
    return Notifier(
        sns_topic_arn=subscriber.topic_arn,
        region_name=REGION,
        endpoint_url=aws,
        file_path=str(tmp_path / "alerts.jsonl"),
    )
