"""`make aws-local`'s resources, created on the test moto server: an object landed under a table's
folder reaches the queue through the EventBridge rule, one elsewhere does not; the stream takes records."""

from __future__ import annotations

import json

from lakehouse_dagster.aws.local import BUCKET, STREAM, create_resources, landing_prefixes


def test_the_local_aws_routes_landed_files_to_the_queue_and_has_a_stream(moto_server) -> None:
    env = create_resources(moto_server.aws, landing_prefixes())
    assert landing_prefixes()[:2] == ["customers/", "dms/sales/customers/"]
    assert env["LAKEHOUSE_LANDING"] == f"s3://{BUCKET}" and env["LAKEHOUSE_KINESIS_STREAM"] == STREAM
    s3, sqs = moto_server.client("s3"), moto_server.client("sqs")
    s3.put_object(Bucket=BUCKET, Key="customers/customers_00001.csv", Body=b"customer_id\n1\n")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/notes.txt", Body=b"x")
    messages = sqs.receive_message(QueueUrl=env["LAKEHOUSE_EVENTS_QUEUE_URL"], MaxNumberOfMessages=10)[
        "Messages"
    ]
    keys = [json.loads(m["Body"])["detail"]["object"]["key"] for m in messages]
    assert keys == ["customers/customers_00001.csv"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=env["LAKEHOUSE_EVENTS_QUEUE_URL"], AttributeNames=["RedrivePolicy"]
    )
    assert json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 5
    kinesis = moto_server.client("kinesis")
    assert kinesis.put_record(StreamName=STREAM, Data=b"{}", PartitionKey="k")["SequenceNumber"]
