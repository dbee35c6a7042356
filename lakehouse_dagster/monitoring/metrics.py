"""The metrics of a materialisation: their names, units and dimensions, and how a unit's report
becomes measurements. Free of Dagster and of any sink.

This catalogue is the contract with the CloudWatch alarms and dashboard of
``infra/modules/monitoring`` (a test checks that they use only these names and dimensions).
Every measurement is published once per dimension set of its metric: per table (and
expectation), and rolled up over all tables (no dimension), which the alarms watch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lakehouse_dagster.lake.layout import TableName

#: Where the local deployment writes measurements (production sends them to CloudWatch).
METRICS_TABLE = TableName("ops", "metrics")
#: Metadata keys the measurements come from.
ROWS_WRITTEN = "lakehouse/rows_written"
ROWS_QUARANTINED = "lakehouse/rows_quarantined"

TABLE = "Table"
EXPECTATION = "Expectation"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    #: A CloudWatch unit.
    unit: str
    #: The dimension sets each measurement is published under; () is the roll-up over all tables.
    dimensions: tuple[tuple[str, ...], ...]
    description: str


ROWS_WRITTEN_METRIC = MetricSpec(
    "RowsWritten",
    "Count",
    ((TABLE,), ()),
    "Rows the materialisation wrote: appended, or inserted + updated + deleted by a MERGE, or the rows "
    "of the table (or of the partitions) it replaced.",
)
ROWS_QUARANTINED_METRIC = MetricSpec(
    "RowsQuarantined",
    "Count",
    ((TABLE,), ()),
    "Rows the table's drop expectations sent to quarantine.<table> in this materialisation.",
)
FAILURE_RATIO_METRIC = MetricSpec(
    "ExpectationFailureRatio",
    "None",
    ((TABLE, EXPECTATION), ()),
    "Share of the rows evaluated that failed the expectation (0 to 1).",
)
DURATION_METRIC = MetricSpec(
    "MaterializationDuration",
    "Seconds",
    ((TABLE,), ()),
    "Wall time of the table's unit of work, as the Dagster step saw it (a Databricks run's queueing "
    "and cluster start included).",
)
FRESHNESS_LAG_METRIC = MetricSpec(
    "FreshnessLag",
    "Seconds",
    ((TABLE,), ()),
    "Time since the table's previous materialisation, when this one ended: how stale the table had "
    "become (the freshness policy warns after 26 hours and fails after 50).",
)
METRICS: tuple[MetricSpec, ...] = (
    ROWS_WRITTEN_METRIC,
    ROWS_QUARANTINED_METRIC,
    FAILURE_RATIO_METRIC,
    DURATION_METRIC,
    FRESHNESS_LAG_METRIC,
)
SPECS = {spec.name: spec for spec in METRICS}


@dataclass(frozen=True)
class Measurement:
    """One value of a metric for a table (and an expectation, for failure ratios)."""

    metric: str
    value: float
    table: str
    at: datetime
    expectation: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in SPECS:
            raise ValueError(f"unknown metric {self.metric!r}; metrics are {', '.join(SPECS)}")
        if (self.expectation is not None) != (EXPECTATION in SPECS[self.metric].dimensions[0]):
            raise ValueError(f"{self.metric}: an expectation is given exactly for per-expectation metrics")

    @property
    def spec(self) -> MetricSpec:
        return SPECS[self.metric]

    def dimension_sets(self) -> Iterator[dict[str, str]]:
        """The dimensions it is published under: per table (and expectation), then rolled up."""
        values = {TABLE: self.table, EXPECTATION: self.expectation or ""}
        for names in self.spec.dimensions:
            yield {name: values[name] for name in names}


def materialization_measurements(
    table: str,
    metadata: Mapping[str, Any],
    checks: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    duration_seconds: float,
    freshness_lag_seconds: float | None,
    at: datetime,
) -> list[Measurement]:
    """A successful materialisation's measurements, from its report's metadata and its checks
    (name, metadata): expectation checks carry ``failure_ratio``. No freshness lag for a table's
    first materialisation."""
    found = [
        Measurement(ROWS_WRITTEN_METRIC.name, float(metadata.get(ROWS_WRITTEN, 0) or 0), table, at),
        Measurement(ROWS_QUARANTINED_METRIC.name, float(metadata.get(ROWS_QUARANTINED, 0) or 0), table, at),
        Measurement(DURATION_METRIC.name, max(0.0, duration_seconds), table, at),
    ]
    if freshness_lag_seconds is not None:
        found.append(Measurement(FRESHNESS_LAG_METRIC.name, max(0.0, freshness_lag_seconds), table, at))
    for name, check_metadata in checks:
        if "failure_ratio" in check_metadata:
            ratio = float(check_metadata["failure_ratio"])
            found.append(Measurement(FAILURE_RATIO_METRIC.name, ratio, table, at, expectation=name))
    return found
