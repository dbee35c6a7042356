"""What a run reported about one table; a metrics resource for runs whose metrics do not matter."""

from __future__ import annotations

import dagster as dg

from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.monitoring.metrics_sink import MetricsSink


def materializations(result: dg.ExecuteInProcessResult, name: TableName) -> list[dg.AssetMaterialization]:
    """The materialisations of ``name`` (its step also reports its quarantine and the quality
    history), one per day of a ranged write."""
    key = dg.AssetKey(name.key_path)
    return [m for m in result.asset_materializations_for_node(name.op_name) if m.asset_key == key]


class UnpublishedMetrics(MetricsSink):
    """The metrics resource of tests that look at the events: measurements go nowhere."""

    def publish(self, measurements, run_id: str) -> str:
        return "nowhere"
