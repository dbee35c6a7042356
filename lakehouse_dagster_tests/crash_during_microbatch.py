"""Run one micro-batch of a stream into bronze and kill the process at a chosen step, as a crash would.

    python -m lakehouse_dagster_tests.crash_during_microbatch SPARK_URL LAKE_ROOT ENDPOINT STREAM STEP

``after_read``: the records were read, nothing was recorded.
``after_claim``: the checkpoints hold the micro-batch's claim; bronze does not hold its rows.
``after_bronze_write``: the bronze commit happened, the checkpoints' commit did not.
``after_commit``: everything happened; the process dies before reporting.
"""

from __future__ import annotations

import logging
import os
import sys

from lakehouse_dagster.aws.clients import AwsConfig
from lakehouse_dagster.engine.sessions import connect
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.stream import microbatch
from lakehouse_dagster.stream.checkpoints import Checkpoints
from lakehouse_dagster.stream.microbatch import ingest_stream
from lakehouse_dagster.stream.sources import StreamSource
from lakehouse_dagster_tests.streams import TARGET

CRASH_EXIT_CODE = 17


def _die(*_args: object, **_kwargs: object) -> None:
    os._exit(CRASH_EXIT_CODE)  # no cleanup, no finally blocks: like a killed process


def _then_die(function):
    def wrapped(*args, **kwargs):
        function(*args, **kwargs)
        _die()

    return wrapped


def main(remote_url: str, root: str, endpoint: str, stream: str, step: str) -> None:
    if step == "after_read":
        microbatch.batch_id_of = _die  # called once the shards are read, before anything is written
    elif step == "after_claim":
        Checkpoints.claim = _then_die(Checkpoints.claim)  # type: ignore[method-assign]
    elif step == "after_bronze_write":
        Checkpoints.commit = _die  # type: ignore[method-assign]
    elif step == "after_commit":
        Checkpoints.commit = _then_die(Checkpoints.commit)  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown step {step!r}")
    tables = DeltaTables(connect(remote_url), LakeLayout.local(root))
    client = AwsConfig(region="us-east-1", endpoint_url=endpoint).client("kinesis")
    ingest_stream(tables, StreamSource(), TARGET, client, stream, log=logging.getLogger(__name__))
    raise SystemExit("the crash point was never reached")


if __name__ == "__main__":
    main(*sys.argv[1:])
