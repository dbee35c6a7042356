"""Benchmark of the ingestion ledger at scale: finding the new files among candidates when a
million files are already ingested, and finding open batches.

    .venv/bin/python benchmarks/ledger_lookup.py [--files 1000000] [--candidates 10]

The ledger is written directly (a claim and a commit per file, in batches of 1,000 files, as
1,000 ingestion runs would leave it); then ``discover`` looks up the candidates (half known,
half new) and ``open_batches`` scans for unsettled claims, each timed on the embedded engine.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import pyarrow as pa
from harness import WORK, fresh

from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.ingest.discovery import discover
from lakehouse_dagster.ingest.ledger import IngestLedger, ledger_table
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.files import LandingFile
from lakehouse_dagster.lake.layout import LakeLayout, TableName

TARGET = TableName("bronze", "events")
BATCH = 1_000


def write_ledger(uri: str, files: int) -> None:
    import deltalake

    now = datetime.now(UTC)
    for start in range(0, files, 50_000):
        count = min(50_000, files - start)
        paths = [f"s3://landing/events/2026/11/{i:09d}.json" for i in range(start, start + count)]
        batches = [f"batch-{i // BATCH:06d}" for i in range(start, start + count)]
        for event, outcome in (("claimed", None), ("committed", "ingested")):
            columns = {
                "file_path": paths,
                "attempt": pa.array([0] * count, pa.int32()),
                "batch_id": batches,
                "event": [event] * count,
                "file_size": pa.array([4096] * count, pa.int64()),
                "file_modified_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
                "fingerprint": [f"etag-{i}" for i in range(start, start + count)],
                "content_hash": pa.nulls(count, pa.string()),
                "outcome": pa.array([outcome] * count, pa.string()),
                "rows": pa.array([10 if outcome else None] * count, pa.int64()),
                "rescued_rows": pa.array([0 if outcome else None] * count, pa.int64()),
                "message": pa.nulls(count, pa.string()),
                "recorded_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
            }
            deltalake.write_deltalake(uri, pa.table(columns), mode="append")


def timed(label: str, function, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    print(f"{label:58} {best:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=10)
    args = parser.parse_args()

    layout = LakeLayout.local(str(fresh(WORK / "ledger")))
    started = time.perf_counter()
    write_ledger(layout.table_uri(ledger_table(TARGET)), args.files)
    print(f"ledger of {args.files:,} ingested files written in {time.perf_counter() - started:.1f} s\n")
    now = datetime.now(UTC)
    known = [
        LandingFile(now, f"s3://landing/events/2026/11/{i:09d}.json", 4096, f"etag-{i}")
        for i in range(0, args.files, max(1, args.files // (args.candidates // 2 or 1)))
    ][: args.candidates // 2]
    new = [
        LandingFile(now, f"s3://landing/events/2026/12/{i:09d}.json", 4096, f"etag-new-{i}")
        for i in range(args.candidates - len(known))
    ]
    with spark_session(EngineSettings()) as spark:
        ledger = IngestLedger(DeltaTables(spark, layout), TARGET)
        found = timed(
            f"discover: {args.candidates} candidates ({len(known)} known)",
            lambda: discover(ledger, [*known, *new]),
        )
        assert len(found.new) == len(new) and found.known == len(known), found
        opened = timed("open_batches: unsettled claims in the whole ledger", ledger.open_batches)
        assert opened == {}


if __name__ == "__main__":
    main()
