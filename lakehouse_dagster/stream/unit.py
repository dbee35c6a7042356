"""The unit of a bronze table fed by a stream: one micro-batch, reported with its quality.

Like file-fed bronze, it keeps every record as it arrived: its expectations warn (or fail the
micro-batch before it is claimed), and ``_rescued_data`` holds what was not a JSON object.
"""

from __future__ import annotations

from typing import Any

from lakehouse_dagster.ingest.unit import combined_results
from lakehouse_dagster.quality.expectations import Evaluation
from lakehouse_dagster.stream.microbatch import BRONZE_DDL, StreamReport, ingest_stream
from lakehouse_dagster.stream.sources import RECORD_POSITION
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult


def ingest_stream_records(context: UnitContext) -> UnitResult:
    tables, name, source = context.tables, context.name, context.table.stream
    assert source is not None
    layout = tables.layout
    stream = source.stream_name(layout.landing_stream)
    evaluations: list[Evaluation] = []
    report = ingest_stream(
        tables,
        source,
        name,
        layout.aws.client("kinesis"),
        stream,
        log=context.log,
        check_batch=lambda frame: evaluations.append(context.evaluate(frame, key_columns=RECORD_POSITION)),
    )
    if not tables.exists(name):
        # Nothing arrived yet: an empty table, so that what reads it can run.
        tables.append(name, tables.spark.createDataFrame([], BRONZE_DDL))
    quality = context.report_results(combined_results(context, evaluations), report.records_ingested, 0)
    return context.result({**stream_metadata(report), **quality.metadata}, quality.outcomes)


def stream_metadata(report: StreamReport) -> dict[str, Any]:
    return {
        "lakehouse/stream": report.stream,
        "lakehouse/records_ingested": report.records_ingested,
        "lakehouse/records_rescued": report.records_rescued,
        "lakehouse/micro_batches": report.batches,
        "lakehouse/recovered_micro_batches": report.recovered_batches,
        "lakehouse/released_micro_batches": report.released_batches,
        "lakehouse/shards_read": report.shards_read,
        "lakehouse/shards_finished": report.shards_finished,
        "lakehouse/millis_behind_latest": report.millis_behind_latest,
        "lakehouse/shards_trimmed_unread": report.shards_trimmed,
    }
