"""The AWS seam as Dagster resources: one family, configured alike, each supplying a boto3 client.

``S3Resource`` is dagster-aws's; dagster-aws has no SQS or Kinesis resource, so those are
ours, built on the same base (``ResourceWithBoto3Configuration``: region, endpoint, retries).
``aws_resources`` builds the family from the deployment's ``AwsConfig``: a moto endpoint
locally, the default credential chain in production. No access key is ever set.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dagster_aws.s3 import S3Resource
from dagster_aws.utils import ResourceWithBoto3Configuration, construct_boto_client_retry_config

from lakehouse_dagster.aws.clients import MAX_ATTEMPTS, AwsConfig, Service


class _Boto3ClientResource(ResourceWithBoto3Configuration):
    service: ClassVar[Service]

    def get_client(self) -> Any:
        import boto3

        session = boto3.session.Session(profile_name=self.profile_name)
        return session.client(
            self.service,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            use_ssl=self.use_ssl,
            verify=self.verify,
            config=construct_boto_client_retry_config(self.max_attempts),
        )


class SqsResource(_Boto3ClientResource):
    """An SQS client (the landing events queue)."""

    service: ClassVar[Service] = "sqs"


class KinesisResource(_Boto3ClientResource):
    """A Kinesis client (the event stream)."""

    service: ClassVar[Service] = "kinesis"


def aws_resources(config: AwsConfig) -> dict[str, ResourceWithBoto3Configuration]:
    """The family, keyed as the sensors ask for it: ``s3``, ``sqs`` and ``kinesis``."""
    common: dict[str, Any] = {
        "region_name": config.region,
        "endpoint_url": config.endpoint_url,
        "max_attempts": MAX_ATTEMPTS,
    }
    return {"s3": S3Resource(**common), "sqs": SqsResource(**common), "kinesis": KinesisResource(**common)}
