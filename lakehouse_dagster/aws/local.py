"""A local AWS for the demo: moto on loopback, with what the production Terraform creates.

    python -m lakehouse_dagster.aws.local serve [--port 5000]     # `make aws-local`
    python -m lakehouse_dagster.aws.local land-customers          # sample CSVs into the landing bucket

``serve`` starts moto's server on 127.0.0.1 and creates, as ``infra/`` does in AWS:

- the landing bucket, sending its events to EventBridge;
- an EventBridge rule for "Object Created" under the landing folders of the file-fed tables,
  targeting the events queue, whose redrive policy moves a message to the dead-letter queue
  after 5 receives;
- the Kinesis stream of events (2 shards).

It writes the environment that points the project at them to ``.aws-local.env`` and prints
it; moto keeps everything in memory, so stopping it (Ctrl-C) forgets it all. moto is a dev
dependency: this module is for local demos only, never imported by the code location.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.deployment import (
    LOCAL_AWS_REGION,
    MOTO_CREDENTIALS,
    LakehouseSettings,
    use_moto_credentials,
)

BUCKET = "lakehouse-landing"
QUEUE = "lakehouse-landing-events"
STREAM = "lakehouse-events"
ENV_FILE = Path(".aws-local.env")
MAX_RECEIVE_COUNT = 5


def create_resources(aws: AwsConfig, landing_prefixes: list[str]) -> dict[str, str]:
    """The bucket, rule, queues and stream; returns the environment that points at them."""
    s3, sqs, events, kinesis = (aws.client(name) for name in ("s3", "sqs", "events", "kinesis"))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    dlq = sqs.create_queue(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
            "VisibilityTimeout": "300",
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [BUCKET]},
            "object": {"key": [{"prefix": prefix} for prefix in landing_prefixes]},
        },
    }
    events.put_rule(Name=f"{BUCKET}-object-created", EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=f"{BUCKET}-object-created", Targets=[{"Id": "landing-events-queue", "Arn": queue_arn}]
    )
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    return {
        # moto accepts any credentials; boto3 wants some. Not secrets: they open nothing but moto.
        **MOTO_CREDENTIALS,
        "AWS_REGION": aws.region or LOCAL_AWS_REGION,
        "LAKEHOUSE_AWS_ENDPOINT_URL": aws.endpoint_url or "",
        "LAKEHOUSE_LANDING": f"s3://{BUCKET}",
        "LAKEHOUSE_EVENTS_QUEUE_URL": queue,
        "LAKEHOUSE_KINESIS_STREAM": STREAM,
    }


def landing_prefixes() -> list[str]:
    from lakehouse_dagster.registry import REGISTRY

    return sorted(
        f"{table.source.folder.strip('/')}/" for table in REGISTRY.tables if table.source is not None
    )


def serve(port: int) -> int:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("moto is a dev dependency: install the project with `make .venv/.installed`", file=sys.stderr)
        return 2
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    use_moto_credentials(endpoint)
    env = create_resources(AwsConfig(region=LOCAL_AWS_REGION, endpoint_url=endpoint), landing_prefixes())
    ENV_FILE.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    print(f"moto is serving on {endpoint}: bucket {BUCKET}, queue {QUEUE} (+ -dlq), stream {STREAM}.")
    print(f"Point the project at it (written to {ENV_FILE}):\n")
    print("    set -a; . ./.aws-local.env; set +a\n")
    print("".join(f"    {name}={value}\n" for name, value in env.items()))
    print(
        "Then `make dev`; land files with `python -m lakehouse_dagster.aws.local land-customers`; put events"
    )
    print(
        f"with `python -m lakehouse_dagster.sample_data events --stream {STREAM} --rate 200 --seconds 120`."
    )
    print("Ctrl-C stops moto (and forgets everything).")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def land_customers(rows: int, files: int, seed: int, start_index: int) -> int:
    """Sample customer CSVs, uploaded under the landing bucket's customers/ folder."""
    from lakehouse_dagster.sample_data.customers import generate_customers

    settings = LakehouseSettings.from_env()
    use_moto_credentials(settings.aws.endpoint_url)
    landing = settings.layout.landing
    if not landing.startswith("s3://"):
        print("LAKEHOUSE_LANDING is not an s3:// URI: load .aws-local.env first", file=sys.stderr)
        return 2
    bucket, _, prefix = landing.removeprefix("s3://").partition("/")
    s3 = settings.aws.client("s3")
    with tempfile.TemporaryDirectory() as folder:
        written = generate_customers(Path(folder), rows=rows, files=files, seed=seed, start_index=start_index)
        for path in written:
            key = "/".join(part for part in (prefix, "customers", path.name) if part)
            s3.upload_file(str(path), bucket, key)
            print(f"put s3://{bucket}/{key}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lakehouse_dagster.aws.local", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="start moto and create the resources")
    serve_parser.add_argument("--port", type=int, default=5000)
    land = commands.add_parser("land-customers", help="upload sample customer CSVs to the landing bucket")
    land.add_argument("--rows", type=int, default=2000)
    land.add_argument("--files", type=int, default=2)
    land.add_argument("--seed", type=int, default=11)
    land.add_argument("--start-index", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.port)
    return land_customers(args.rows, args.files, args.seed, args.start_index)


if __name__ == "__main__":
    sys.exit(main())
