"""Run one table's unit of work and report it, whatever happens: the core every runner calls."""

from __future__ import annotations

import logging
import random
import time

from lakehouse_dagster.declarations.table import Build, Table
from lakehouse_dagster.lake.delta import ConcurrentWriteError, DeltaTables
from lakehouse_dagster.ml.settings import MlflowSettings
from lakehouse_dagster.monitoring.metrics import ROWS_WRITTEN
from lakehouse_dagster.quality.checks import expectation_outcomes
from lakehouse_dagster.quality.expectations import ExpectationFailedError
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitError, UnitResult
from lakehouse_dagster.units.request import UnitRequest

#: How many times a unit runs when concurrent writers keep winning its commits.
RETRIES = 4


def build_of(table: Table, request: UnitRequest) -> Build:
    """What the request asks of the table: its maintenance, or its build (file ingestion, stream
    ingestion, change application, or its own function)."""
    if request.maintenance is not None:
        from lakehouse_dagster.maintenance.unit import maintain

        return maintain
    if table.source is not None:
        from lakehouse_dagster.ingest.unit import ingest_files

        return ingest_files
    if table.stream is not None:
        from lakehouse_dagster.stream.unit import ingest_stream_records

        return ingest_stream_records
    if table.cdc is not None:
        from lakehouse_dagster.cdc.apply import apply_changes

        return apply_changes
    assert table.build is not None
    return table.build


def run_unit(
    request: UnitRequest,
    table: Table,
    tables: DeltaTables,
    thresholds: Thresholds,
    log: logging.Logger | None = None,
    models: MlflowSettings | None = None,
) -> UnitResult:
    """The table's report. A failure is reported, not raised: its error, and the failed checks
    of a ``fail`` expectation, so that every runner shows them the same way."""
    context = UnitContext(
        request, tables, table, log or logging.getLogger(__name__), thresholds, models=models
    )
    try:
        if request.maintenance is not None:
            return _with_retries(context, build_of(table, request))
        before = tables.version(table.name)
        result = _with_retries(context, build_of(table, request))
        result.metadata[ROWS_WRITTEN] = tables.rows_written(table.name, before)
        return result
    except ExpectationFailedError as error:
        return UnitResult(
            str(table.name),
            checks=expectation_outcomes(error.results),
            error=UnitError.of(error),
            related=list(context.related),  # the failure's quality records
        )
    except Exception as error:
        context.log.error("%s failed: %s", table.name, error)
        return UnitResult(str(table.name), error=UnitError.of(error), related=list(context.related))


def _with_retries(context: UnitContext, build: Build, attempts: int = RETRIES) -> UnitResult:
    """Run ``build``, again after a concurrent writer won a commit: every build is idempotent
    (it rebuilds, replaces or merges what its inputs say), so the retry finds the work done or
    does it once."""
    for attempt in range(1, attempts + 1):
        context.related.clear()  # each attempt reports what it wrote
        try:
            return build(context)
        except ConcurrentWriteError as error:
            if attempt == attempts:
                raise
            context.log.warning("%s: %s; attempt %d of %d", context.name, error, attempt + 1, attempts)
            time.sleep(random.uniform(0.2, 1.0) * attempt)
    raise AssertionError("unreachable")
