"""Benchmark of table maintenance: a bronze table of many small appends (one per micro-batch), read
on the embedded engine before and after its maintenance unit compacts it.

    .venv/bin/python benchmarks/maintenance.py [--appends 1000] [--rows 100]

Prints the files and bytes before and after, the maintenance unit's wall time (compaction and
VACUUM, through ``run_unit``), the time to read the table (a full aggregation) before and after,
and the time to publish one materialisation's metrics to the local ``ops.metrics``.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, date, datetime

import pyarrow as pa
from harness import WORK, fresh

from lakehouse_dagster.declarations.maintenance import DEFAULT_MAINTENANCE, Maintenance
from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.engine.sessions import spark_session
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.monitoring.metrics import Measurement
from lakehouse_dagster.monitoring.metrics_sink import LakeMetrics
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.units.request import UnitRequest
from lakehouse_dagster.units.run import run_unit

TARGET = TableName("bronze", "events")


def never(context):
    raise AssertionError("the benchmark maintains the table, it never builds it")


def append_batches(uri: str, appends: int, rows: int) -> None:
    import deltalake

    for batch in range(appends):
        ids = range(batch * rows, (batch + 1) * rows)
        frame = pa.table(
            {
                "id": list(ids),
                "customer": [f"c{i % 997}" for i in ids],
                "amount": [float(i % 1000) / 10 for i in ids],
                "_batch_id": [f"batch-{batch:06d}"] * rows,
            }
        )
        deltalake.write_deltalake(uri, frame, mode="append")


def timed_read(tables: DeltaTables) -> tuple[float, int]:
    started = time.perf_counter()
    row = tables.read(TARGET).groupBy().agg({"amount": "sum", "id": "count"}).first()
    return time.perf_counter() - started, int(row["count(id)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    root = fresh(WORK / "maintenance")
    layout = LakeLayout.local(str(root))
    with spark_session(EngineSettings()) as spark:
        tables = DeltaTables(spark, layout)
        started = time.perf_counter()
        append_batches(tables.uri(TARGET), args.appends, args.rows)
        print(f"{args.appends} appends of {args.rows} rows: {time.perf_counter() - started:.1f} s")
        timed_read(tables)  # warm the engine up
        before_read, rows = timed_read(tables)

        maintenance = Maintenance().merged_over(DEFAULT_MAINTENANCE)
        request = UnitRequest(str(TARGET), date.today(), run_id="bench", maintenance=maintenance)
        table = Table(TARGET, "benchmark", build=never)
        started = time.perf_counter()
        result = run_unit(request, table, tables, Thresholds(), logging.getLogger("bench"))
        maintain_seconds = time.perf_counter() - started
        assert result.error is None, result.error
        after_read, rows_after = timed_read(tables)
        assert rows_after == rows == args.appends * args.rows

        sink = LakeMetrics(table_uri=layout.table_uri(TableName("ops", "metrics")))
        now = datetime.now(UTC)
        measurements = [Measurement("RowsWritten", 1.0, str(TARGET), now)] * 8
        sink.publish(measurements, "warm-up")
        started = time.perf_counter()
        for _ in range(20):
            sink.publish(measurements, "bench")
        publish_ms = (time.perf_counter() - started) / 20 * 1000

    metadata = result.metadata
    print(f"{'':26}{'before':>12}{'after':>12}")
    for label, key in (("files", "files"), ("bytes", "bytes")):
        before, after = (
            metadata[f"lakehouse/maintenance/{key}_before"],
            metadata[f"lakehouse/maintenance/{key}_after"],
        )
        print(f"{label:26}{before:12,}{after:12,}")
    print(f"{'full read (s)':26}{before_read:12.2f}{after_read:12.2f}")
    print(f"maintenance unit: {maintain_seconds:.1f} s (compaction + VACUUM of the table)")
    print(f"metrics to ops.metrics: {publish_ms:.0f} ms per materialisation (8 measurements)")


if __name__ == "__main__":
    main()
