"""Silver tables applied from DMS change data in bronze: one factory, SCD type 1 or 2.

Each run takes the bronze batches the table has not applied yet:

1. their changes are checked (known ``Op``, key and sequence present, nothing rescued); the
   failing ones go to ``quarantine.<table>`` with the expectations they failed, never applied;
2. for every key they touch, the key's state is recomputed from all its valid changes in
   bronze (so a late, duplicated or out-of-order change lands where it belongs) and merged
   into the table with ``MERGE INTO``: type 1 keeps the current row, type 2 the versions;
3. the batches are recorded in ``ops.cdc_progress__<layer>__<table>``.

A run that dies before step 3 applies the same batches again next time, which changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.ingest.autoloader import BATCH_ID, RESCUED_DATA
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality.expectations import Action, Expectation, passing
from lakehouse_dagster.transforms.cdc import (
    END_AT,
    IS_DELETE,
    START_AT,
    CdcConfig,
    current_state,
    history,
    latest_changes,
)
from lakehouse_dagster.units.base import TableUnit, UnitContext, UnitResult
from lakehouse_dagster.units.table_checks import TableCheck

#: Dates of the partitions a batch of changes touched, for tables that feed partitioned facts.
TouchedDates = Callable[[DeltaTables, DataFrame], list[date]]

KNOWN_OPERATIONS = ("I", "U", "D")


@dataclass(frozen=True)
class CdcTable:
    source: TableName
    target: TableName
    config: CdcConfig
    description: str
    group: str
    touched_dates: TouchedDates | None = None

    def structural_expectations(self) -> tuple[Expectation, ...]:
        """What every change must satisfy to be applied at all."""
        ops = ", ".join(f"'{op}'" for op in KNOWN_OPERATIONS)
        keys = " AND ".join(f"`{k}` IS NOT NULL" for k in self.config.keys)
        return (
            Expectation(
                "known_operation", f"Op IS NULL OR Op IN ({ops})", Action.DROP, "Op is I, U, D or absent"
            ),
            Expectation(
                "key_present", keys, Action.DROP, f"the key ({', '.join(self.config.keys)}) is present"
            ),
            Expectation(
                "sequence_present",
                f"`{self.config.sequence_by}` IS NOT NULL",
                Action.DROP,
                f"{self.config.sequence_by} is a timestamp",
            ),
            Expectation(
                "nothing_rescued",
                f"`{RESCUED_DATA}` IS NULL",
                Action.DROP,
                "every value fits its column (a partial change is not applied)",
            ),
        )


def progress_table(target: TableName) -> TableName:
    return TableName("ops", f"cdc_progress__{target.layer}__{target.table}")


def auto_cdc_unit(
    spec: CdcTable, *, expectations: tuple[Expectation, ...] = (), table_checks: tuple[TableCheck, ...] = ()
) -> TableUnit:
    """The unit of a table applied from change data. ``expectations`` add the domain's rules on
    changes to the structural ones; a ``drop`` rule keeps a change from being applied."""
    config = spec.config
    return TableUnit(
        name=spec.target,
        description=spec.description,
        group=spec.group,
        run=partial(apply_changes, spec),
        inputs=(spec.source,),
        expectations=(*spec.structural_expectations(), *(_on_readable_changes(e) for e in expectations)),
        primary_key=config.keys if config.scd_type == 1 else (*config.keys, START_AT),
        table_checks=table_checks,
    )


def _on_readable_changes(expectation: Expectation) -> Expectation:
    """A domain rule judges the values of changes that were read whole: a malformed line (all
    null, its text in ``_rescued_data``) is counted by ``nothing_rescued``, not by every rule."""
    return replace(expectation, condition=f"`{RESCUED_DATA}` IS NOT NULL OR ({expectation.condition})")


def apply_changes(spec: CdcTable, context: UnitContext) -> UnitResult:
    tables, config = context.tables, spec.config
    bronze = tables.read(spec.source)
    applied = _applied_batches(tables, spec.target)
    pending = sorted({row[0] for row in bronze.select(BATCH_ID).distinct().collect()} - applied)
    evaluation = context.evaluate(bronze.where(F.col(BATCH_ID).isin(pending)), key_columns=config.keys)

    metadata: dict[str, Any] = {
        "lakehouse/batches_applied": pending,
        "lakehouse/changes_read": evaluation.input_rows,
    }
    if pending or not tables.exists(spec.target):
        valid = bronze.where(passing(context.expectations()))
        touched = evaluation.kept.select(*config.keys).distinct()
        changes = valid.join(touched, list(config.keys), "left_semi")
        before = tables.version(spec.target)
        if config.scd_type == 1:
            _merge_current_state(tables, spec, changes)
        else:
            _merge_history(tables, spec, changes)
        metadata["lakehouse/merge_metrics"] = _merge_metrics(tables, spec.target, before)
        metadata["lakehouse/keys_touched"] = touched.count()
        if spec.touched_dates is not None:
            metadata["lakehouse/touched_dates"] = [
                d.isoformat() for d in spec.touched_dates(tables, evaluation.kept)
            ]
    else:
        context.log.info("%s: no new batches in %s", spec.target, spec.source)
    quality, outcomes = context.record_quality(evaluation, incremental=True)
    _record_applied(tables, spec.target, pending, context.request.run_id)
    return context.result({**metadata, **quality}, outcomes)


# Type 1 and type 2 merges ----------------------------------------------------------------


def _merge(tables: DeltaTables, target: TableName, source: DataFrame, statement: str) -> None:
    view = f"changes_{uuid.uuid4().hex}"
    source.createOrReplaceTempView(view)
    try:
        tables.spark.sql(statement.format(target=tables.sql_ref(target), source=view)).collect()
    finally:
        tables.spark.catalog.dropTempView(view)


def _on(columns: tuple[str, ...]) -> str:
    return " AND ".join(f"t.`{c}` = s.`{c}`" for c in columns)


def _differs(columns: tuple[str, ...]) -> str:
    return "NOT (" + " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in columns) + ")"


def _set(columns: tuple[str, ...]) -> str:
    return ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)


def _insert(columns: tuple[str, ...]) -> str:
    return f"({', '.join(f'`{c}`' for c in columns)}) VALUES ({', '.join(f's.`{c}`' for c in columns)})"


def _merge_current_state(tables: DeltaTables, spec: CdcTable, changes: DataFrame) -> None:
    config = spec.config
    if not tables.exists(spec.target):
        tables.overwrite(spec.target, current_state(changes, config))
        return
    columns = config.output_columns
    _merge(
        tables,
        spec.target,
        latest_changes(changes, config),
        f"MERGE INTO {{target}} AS t USING {{source}} AS s ON {_on(config.keys)} "
        f"WHEN MATCHED AND s.`{IS_DELETE}` THEN DELETE "
        f"WHEN MATCHED AND {_differs(columns)} THEN UPDATE SET {_set(columns)} "
        f"WHEN NOT MATCHED AND NOT s.`{IS_DELETE}` THEN INSERT {_insert(columns)}",
    )


def _merge_history(tables: DeltaTables, spec: CdcTable, changes: DataFrame) -> None:
    config = spec.config
    versions = history(changes, config)
    if not tables.exists(spec.target):
        tables.overwrite(spec.target, versions)
        return
    version_key = (*config.keys, START_AT)
    existing = tables.read(spec.target).join(
        changes.select(*config.keys).distinct(), list(config.keys), "left_semi"
    )
    # Versions of a touched key that the recomputed history no longer has (a late change moved
    # a boundary) are deleted in the same MERGE.
    stale = existing.join(versions, list(version_key), "left_anti").select(*version_key)
    source = versions.withColumn("_stale", F.lit(False)).unionByName(
        stale.withColumn("_stale", F.lit(True)), allowMissingColumns=True
    )
    columns = (*config.output_columns, START_AT, END_AT)
    _merge(
        tables,
        spec.target,
        source,
        f"MERGE INTO {{target}} AS t USING {{source}} AS s ON {_on(version_key)} "
        f"WHEN MATCHED AND s._stale THEN DELETE "
        f"WHEN MATCHED AND {_differs(columns)} THEN UPDATE SET {_set(columns)} "
        f"WHEN NOT MATCHED AND NOT s._stale THEN INSERT {_insert(columns)}",
    )


# Progress ------------------------------------------------------------------------------------


def _applied_batches(tables: DeltaTables, target: TableName) -> set[str]:
    name = progress_table(target)
    if not tables.exists(name) or not tables.exists(target):
        return set()
    return {row[0] for row in tables.read(name).select("batch_id").collect()}


def _record_applied(tables: DeltaTables, target: TableName, batches: list[str], run_id: str) -> None:
    if not batches:
        return
    now = datetime.now(UTC)
    frame = tables.spark.createDataFrame(
        [(batch, run_id, now) for batch in batches], "batch_id STRING, run_id STRING, applied_at TIMESTAMP"
    )
    tables.append(progress_table(target), frame)


def _merge_metrics(tables: DeltaTables, target: TableName, before: int | None) -> dict[str, Any]:
    """Rows inserted, updated and deleted by the run's commit, from the Delta log."""
    import deltalake

    if tables.version(target) == before:
        return {"rows_inserted": 0, "rows_updated": 0, "rows_deleted": 0}
    commit = deltalake.DeltaTable(tables.uri(target)).history(1)[0]
    metrics = commit.get("operationMetrics") or {}
    return {
        "operation": commit.get("operation"),
        "rows_inserted": int(metrics.get("numTargetRowsInserted", metrics.get("numOutputRows", 0)) or 0),
        "rows_updated": int(metrics.get("numTargetRowsUpdated", 0) or 0),
        "rows_deleted": int(metrics.get("numTargetRowsDeleted", 0) or 0),
    }
