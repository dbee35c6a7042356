"""A materialisation's metrics, published from its asset's step after the unit succeeded."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.monitoring.metrics import materialization_measurements
from lakehouse_dagster.monitoring.metrics_sink import MetricsSink
from lakehouse_dagster.units.report import UnitResult


def publish_metrics(
    context: dg.AssetExecutionContext,
    sink: MetricsSink,
    table: Table,
    result: UnitResult,
    duration_seconds: float,
) -> None:
    """Rows written and quarantined, failure ratio per expectation, duration and freshness lag (the
    time since the table's previous materialisation). A sink that fails does not fail the
    materialisation, whose data is written: the run's log says so, as a warning."""
    now = datetime.now(UTC)
    previous = context.instance.get_latest_materialization_event(dg.AssetKey(table.name.key_path))
    measurements = materialization_measurements(
        str(table.name),
        result.metadata,
        [(check.name, check.metadata) for check in result.checks],
        duration_seconds=duration_seconds,
        freshness_lag_seconds=now.timestamp() - previous.timestamp if previous is not None else None,
        at=now,
    )
    try:
        where = sink.publish(measurements, context.run.run_id)
    except Exception as error:
        context.log.warning(f"{table.name}: metrics not published: {type(error).__name__}: {error}")
        return
    context.log.debug(f"{table.name}: {len(measurements)} measurement(s) published to {where}")
