"""`make aws-local`'s resources, created on the test moto server: an object landed under a table's
folder reaches the queue through the EventBridge rule, one elsewhere does not; the stream takes records."""

from __future__ import annotations

import json
import logging

import pytest

from lakehouse_dagster.aws.local import BUCKET, STREAM, create_resources, landing_prefixes
from lakehouse_dagster.deployment import ROLE_PROFILE, use_deployment_role


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


@pytest.mark.parametrize(
    ("compute", "source"),
    [
        ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}, "EcsContainer"),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"}, "EcsContainer"),
        ({}, "Ec2InstanceMetadata"),
    ],
)
def test_the_deployment_role_is_assumed_from_the_computes_own_credentials(
    tmp_path, monkeypatch, compute: dict, source: str
) -> None:
    """botocore reads AWS_ROLE_ARN only with a web identity token: the process gets a profile that
    assumes it. Resolved here without calling STS (botocore defers the assumption)."""
    import botocore.session

    role = "arn:aws:iam::123456789012:role/lakehouse-dagster"
    env = {"AWS_ROLE_ARN": role, **compute}

    assert use_deployment_role(tmp_path, env)

    assert env["AWS_PROFILE"] == ROLE_PROFILE
    monkeypatch.setenv("AWS_CONFIG_FILE", env["AWS_CONFIG_FILE"])
    session = botocore.session.Session(profile=ROLE_PROFILE)
    profile = session.full_config["profiles"][ROLE_PROFILE]
    assert (profile["role_arn"], profile["credential_source"]) == (role, source)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"},
        {"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_PROFILE": "mine"},
    ],
)
def test_no_profile_where_the_sdks_need_none(tmp_path, env: dict) -> None:
    before = dict(env)
    assert not use_deployment_role(tmp_path, env)
    assert env == before and not list(tmp_path.iterdir())


def test_static_keys_beside_the_role_are_warned_of_and_get_no_profile(tmp_path, caplog) -> None:
    """botocore signs with keys in the environment before it looks at any profile."""
    for compute in ({}, {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}):
        env = {"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", **compute}
        with caplog.at_level(logging.WARNING):
            assert not use_deployment_role(tmp_path, env)
        assert "AWS_PROFILE" not in env and "do not assume the role" in caplog.text
