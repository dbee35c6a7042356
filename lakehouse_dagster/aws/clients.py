"""boto3 clients for S3, SQS and Kinesis, from one configuration: a region and an endpoint.

Locally and in tests the endpoint is a moto server on loopback (``LAKEHOUSE_AWS_ENDPOINT_URL``);
in production it is unset and boto3 signs with its default credential chain (the role of the
process, an instance profile on a cluster). No credential is ever configured here, so none
can reach code, logs or run metadata.

Dagster-free: a unit of work reads Kinesis and S3 landing files wherever it runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

Service = Literal["s3", "sqs", "kinesis", "events"]
#: boto3's standard retry mode: throttling and transient errors are retried with backoff.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class AwsConfig:
    """Where AWS is: ``region`` (None: boto3's default) and ``endpoint_url`` (None: AWS itself)."""

    region: str | None = None
    endpoint_url: str | None = None

    def client(self, service: Service) -> Any:
        """A client of ``service``, shared by the process's threads (boto3 clients are thread-safe)."""
        return _client(service, self.region, self.endpoint_url)

    def describe(self) -> str:
        """Where the calls go, for logs: never a credential."""
        return f"{self.endpoint_url or 'AWS'} ({self.region or 'default region'})"


@functools.lru_cache(maxsize=16)
def _client(service: Service, region: str | None, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"}),
    )
