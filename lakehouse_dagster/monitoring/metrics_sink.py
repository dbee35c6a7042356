"""The metrics seam: where the measurements of each materialisation go. CloudWatch custom metrics in
production (``PutMetricData``, batched; each measurement once per dimension set of its metric),
the ``ops.metrics`` Delta table of the lake elsewhere (one row per measurement)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from lakehouse_dagster.monitoring.metrics import Measurement

#: PutMetricData takes at most 1,000 metrics (and 1 MB) per request.
MAX_DATUMS = 1000


class MetricsSink(dg.ConfigurableResource, ABC):
    @abstractmethod
    def publish(self, measurements: Sequence[Measurement], run_id: str) -> str:
        """Publish the measurements; return where they went."""


class CloudWatchMetrics(MetricsSink):
    namespace: str
    region_name: str | None = None
    #: Tests point the client at a moto server.
    endpoint_url: str | None = None

    _client: Any = PrivateAttr(default=None)

    def publish(self, measurements: Sequence[Measurement], run_id: str) -> str:
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "cloudwatch", region_name=self.region_name, endpoint_url=self.endpoint_url
            )
        datums = [
            {
                "MetricName": measurement.metric,
                "Dimensions": [{"Name": name, "Value": value} for name, value in dimensions.items()],
                "Timestamp": measurement.at,
                "Value": measurement.value,
                "Unit": measurement.spec.unit,
            }
            for measurement in measurements
            for dimensions in measurement.dimension_sets()
        ]
        for start in range(0, len(datums), MAX_DATUMS):
            self._client.put_metric_data(
                Namespace=self.namespace, MetricData=datums[start : start + MAX_DATUMS]
            )
        return f"CloudWatch namespace {self.namespace}"


class LakeMetrics(MetricsSink):
    """Appends to the Delta table at ``table_uri`` (``ops.metrics``) with delta-rs: no engine needed."""

    table_uri: str

    def publish(self, measurements: Sequence[Measurement], run_id: str) -> str:
        import pyarrow as pa

        from lakehouse_dagster.lake.snapshots import append_rows

        schema = pa.schema(
            [
                ("metric", pa.string()),
                ("value", pa.float64()),
                ("unit", pa.string()),
                ("table", pa.string()),
                ("expectation", pa.string()),
                ("run_id", pa.string()),
                ("recorded_at", pa.timestamp("us", tz="UTC")),
            ]
        )
        rows = pa.Table.from_pylist(
            [
                {
                    "metric": m.metric,
                    "value": m.value,
                    "unit": m.spec.unit,
                    "table": m.table,
                    "expectation": m.expectation,
                    "run_id": run_id,
                    "recorded_at": m.at,
                }
                for m in measurements
            ],
            schema=schema,
        )
        append_rows(self.table_uri, rows)
        return self.table_uri
