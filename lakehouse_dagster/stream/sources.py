"""What feeds a bronze table from a stream: the records of a Kinesis stream."""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse_dagster.ingest.sources import BATCH_ID, INGESTED_AT, RESCUED_DATA

#: Bronze columns of a stream table: the record as Kinesis delivered it, then ingestion metadata.
DATA = "data"
SHARD_ID = "shard_id"
SEQUENCE_NUMBER = "sequence_number"
PARTITION_KEY = "partition_key"
ARRIVAL = "approximate_arrival_timestamp"
RECORD_COLUMNS = (DATA, SHARD_ID, SEQUENCE_NUMBER, PARTITION_KEY, ARRIVAL)
METADATA_COLUMNS = (INGESTED_AT, BATCH_ID, RESCUED_DATA)
#: What identifies a record in the stream: quarantines and tests key on it.
RECORD_POSITION = (SHARD_ID, SEQUENCE_NUMBER)
#: The key of a non-JSON record's text in ``_rescued_data`` (base64 under ``_malformed_record_base64``
#: when it is not UTF-8 either).
MALFORMED_RECORD = "_malformed_record"


@dataclass(frozen=True)
class StreamSource:
    """Records of a Kinesis stream, each a JSON object in ``Data``.

    ``stream`` names the stream; None takes the deployment's (``LAKEHOUSE_KINESIS_STREAM``).
    A micro-batch reads at most ``max_records_per_batch`` records, shared among the shards it
    can read, and at most ``max_calls_per_shard`` GetRecords calls per shard (Kinesis allows 5
    calls a second per shard).
    """

    stream: str | None = None
    max_records_per_batch: int = 200_000
    max_calls_per_shard: int = 40

    def stream_name(self, deployment_stream: str | None) -> str:
        name = self.stream or deployment_stream
        if not name:
            raise ValueError(
                "no Kinesis stream: the source names none and LAKEHOUSE_KINESIS_STREAM is not set "
                "(`make aws-local` prints how to point the project at a local one)"
            )
        return name
