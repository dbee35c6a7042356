"""Latency of the real-time path: ``put_record`` -> visible in ``gold.events_per_minute``.

    .venv/bin/python benchmarks/events_latency.py [--rate 1000] [--seconds 180] [--interval 15] [--shards 4]

Everything runs as it would under ``dagster dev``, on this machine:

- a moto server (in this process) holds the Kinesis stream;
- ``dagster-daemon run`` evaluates the micro-batch sensor every ``--interval`` seconds and the
  automation condition sensor, and launches each requested run in a process of its own (the
  default run launcher), with the local instance's concurrency settings (``dagster.yaml``);
- the generator (``python -m lakehouse_dagster.sample_data events``) puts ``--rate`` records a
  second for ``--seconds`` in its own process.

A record is *visible* when the run that built ``gold.events_per_minute`` from a silver that
includes its bronze micro-batch has materialised it: its latency is that materialisation's
time minus the record's ``ApproximateArrivalTimestamp`` (set by the stream when it was put).
Only records that are events (not the malformed ones) are counted.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
from harness import WORK, fresh

from lakehouse_dagster.lake.layout import TableName

REPO = Path(__file__).resolve().parent.parent
SILVER, GOLD = TableName("silver", "events").key_path, TableName("gold", "events_per_minute").key_path


def _fit_moto_kinesis() -> None:
    """moto's Kinesis is a test double, not a server for 1,000 records a second:

    - it is not thread-safe: a GetRecords that iterates a shard while a PutRecords appends to
      it fails ("OrderedDict mutated during iteration"); one lock around the record operations;
    - each put lists all the shard's keys to find the last sequence number, and each GetRecords
      scans the shard from its first record: both are made O(1) per record (moto numbers a
      shard's records 1, 2, 3, ...), so the stand-in is not what is measured.

    Its threaded server runs in this process, so the patches change what the endpoint does."""
    from moto.kinesis.models import KinesisBackend, Shard

    lock = threading.Lock()
    for name in ("put_record", "put_records", "get_records"):
        method = getattr(KinesisBackend, name)

        def locked(*args, _method=method, **kwargs):
            with lock:
                return _method(*args, **kwargs)

        setattr(KinesisBackend, name, locked)

    def last_sequence(self):
        return next(reversed(self.records)) if self.records else 0

    def get_records(self, last_sequence_id, limit):
        last = int(last_sequence_id)
        newest = last_sequence(self)
        results = [self.records[n] for n in range(last + 1, min(newest, last + (limit or newest)) + 1)]
        behind = self.records[newest].created_at - results[-1].created_at if results else 0.0
        return results, (results[-1].sequence_number if results else last), int(behind * 1000)

    Shard.get_max_sequence_number = last_sequence
    Shard.get_records = get_records


def _stop_on_sigterm() -> None:
    def stop(_signum, _frame):
        raise SystemExit("terminated")  # run the finally blocks: stop the daemon and moto

    signal.signal(signal.SIGTERM, stop)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--interval", type=int, default=15)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--drain-timeout", type=int, default=240)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    from lakehouse_dagster.aws.clients import AwsConfig
    from lakehouse_dagster.deployment import MOTO_CREDENTIALS

    work = fresh(WORK / "events_latency")
    home = fresh(work / "dagster_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    _stop_on_sigterm()
    _fit_moto_kinesis()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        **os.environ,
        **MOTO_CREDENTIALS,
        "DAGSTER_HOME": str(home),
        "LAKEHOUSE_DEPLOYMENT": "local",
        "LAKEHOUSE_ROOT": str(work / "lake"),
        "LAKEHOUSE_AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "LAKEHOUSE_KINESIS_STREAM": "bench-events",
        "LAKEHOUSE_STREAM_INTERVAL_SECONDS": str(args.interval),
    }
    os.environ.update(MOTO_CREDENTIALS)
    kinesis = AwsConfig("us-east-1", endpoint).client("kinesis")
    kinesis.create_stream(StreamName="bench-events", ShardCount=args.shards)

    log = (work / "daemon.log").open("w")  # closed after the daemon stops
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(20)  # the daemon loads the code location, the sensors take their first ticks
        started = time.time()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "lakehouse_dagster.sample_data",
                "events",
                "--stream",
                "bench-events",
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds),
                "--seed",
                "3",
            ],
            env=env,
            check=True,
        )
        produced_in = time.time() - started
        drained = _wait_until_gold_has_everything(env, work, args.drain_timeout)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()
        server.stop()
    _report(env, work, args, produced_in, drained)
    return 0


def _delta(work: Path, layer: str, table: str) -> pd.DataFrame:
    import deltalake

    uri = str(work / "lake" / layer / table)
    if not deltalake.DeltaTable.is_deltatable(uri):
        return pd.DataFrame()
    return deltalake.DeltaTable(uri).to_pandas()


def _wait_until_gold_has_everything(env: dict[str, str], work: Path, timeout: int) -> bool:
    """Until silver's progress covers bronze's newest micro-batch, gold was built after it, and
    two more ticks bring nothing new."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(5)
        bronze = _delta(work, "bronze", "events")
        progress = _delta(work, "ops", "stream_progress__silver__events")
        if bronze.empty or progress.empty:
            continue
        newest = bronze["_batch_id"].max()
        visible = _visibility(env)
        if progress["bronze_batch_id"].max() >= newest and visible and max(visible) >= newest:
            time.sleep(2 * int(env["LAKEHOUSE_STREAM_INTERVAL_SECONDS"]))
            if _delta(work, "bronze", "events")["_batch_id"].max() == newest:
                return True
    return False


def _visibility(env: dict[str, str]) -> dict[str, float]:
    """Silver's bronze micro-batch "through" -> when gold.events_per_minute was first built from
    it (epoch seconds): the silver and gold materialisations of one automation run."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    with dg.DagsterInstance.get() as instance:
        silver = instance.fetch_materializations(dg.AssetKey(SILVER), limit=10_000).records
        gold = instance.fetch_materializations(dg.AssetKey(GOLD), limit=10_000).records
    through_by_run = {
        r.run_id: r.asset_materialization.metadata["lakehouse/bronze_batches_through"].value for r in silver
    }
    visible: dict[str, float] = {}
    for record in sorted(gold, key=lambda r: r.timestamp):
        through = through_by_run.get(record.run_id)
        if through and through not in visible:
            visible[through] = record.timestamp
    return visible


def _report(
    env: dict[str, str], work: Path, args: argparse.Namespace, produced_in: float, drained: bool
) -> None:
    bronze = _delta(work, "bronze", "events")
    marks = sorted(_visibility(env).items())
    batches = sorted(bronze["_batch_id"].unique())
    # A micro-batch is visible with the first gold build from a silver through it or a later one.
    when = {
        batch: min((at for through, at in marks if through >= batch), default=float("nan"))
        for batch in batches
    }
    events = bronze[bronze["data"].notna()]
    arrival = pd.to_datetime(events["approximate_arrival_timestamp"], utc=True).map(lambda t: t.timestamp())
    latency = events["_batch_id"].map(when) - arrival
    silver = _delta(work, "silver", "events")
    gold = _delta(work, "gold", "events_per_minute")
    print(
        f"asked {args.rate} records/s for {args.seconds} s on {args.shards} shards; "
        f"micro-batch every {args.interval} s"
    )
    print(
        f"records put and ingested: {len(bronze):,} ({len(events):,} events) in {produced_in:.0f} s: "
        f"{len(bronze) / produced_in:,.0f} records/s sustained; every one visible in gold: {drained}"
    )
    print(
        f"micro-batches: {len(batches)}; gold builds: {len(marks)}; silver.events {len(silver):,} rows; "
        f"gold.events_per_minute counts {int(gold['events'].sum()) if not gold.empty else 0:,} events"
    )
    print(
        f"latency put_record -> visible in gold.events_per_minute: p50 {latency.quantile(0.5):.1f} s, "
        f"p95 {latency.quantile(0.95):.1f} s, max {latency.max():.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
