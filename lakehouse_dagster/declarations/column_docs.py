"""Descriptions of the columns the framework adds, whatever the table: ingestion metadata,
quarantine stamps, the quality history's columns. A table's own ``column_docs`` come first."""

from __future__ import annotations

from lakehouse_dagster.ingest.sources import (
    BATCH_ID,
    INGESTED_AT,
    RESCUED_DATA,
    SOURCE_FILE,
    SOURCE_FILE_MODIFIED_AT,
    SOURCE_ROW,
)
from lakehouse_dagster.quality.expectations import FAILED_EXPECTATIONS
from lakehouse_dagster.quality.quarantine import QUARANTINED_AT, RUN_ID

#: Columns that any table carrying them has in the same sense.
FRAMEWORK_COLUMN_DOCS = {
    SOURCE_FILE: "The landed file the row was read from.",
    SOURCE_FILE_MODIFIED_AT: "When that file was last modified, as the landing zone listed it.",
    SOURCE_ROW: "The row's line in that file (the header is line 1).",
    INGESTED_AT: "When the row was ingested into bronze.",
    BATCH_ID: "The ingestion batch that wrote the row (see the table's ingest ledger in ops).",
    RESCUED_DATA: "What did not fit the row's columns, as JSON (unparseable values, new columns in rescue "
    "mode, a malformed line); null when the row was read whole.",
    FAILED_EXPECTATIONS: "The drop expectations the row failed: why it is in quarantine.",
    RUN_ID: "The Dagster run that quarantined the row.",
    QUARANTINED_AT: "When the row was quarantined (UTC).",
}

#: The columns of ``ops.data_quality``.
HISTORY_COLUMN_DOCS = {
    "run_id": "The Dagster run that evaluated the expectation.",
    "asset": "The table evaluated, layer.table.",
    "partition": "The day evaluated (a partitioned write records each day); null for a whole table.",
    "expectation": "The expectation's name (an asset check of the table).",
    "action": "warn, drop or fail.",
    "passed": "Rows that passed it.",
    "failed": "Rows that failed it.",
    "recorded_at": "When the result was recorded (UTC).",
}
