"""How ``apply.py`` writes a silver table's state: a first build, a MERGE of the touched keys, or a
rewrite of a table an earlier release wrote unpartitioned.

A partitioned table (``AutoCdc.partition``) is MERGEd with a condition on its partition column,
so that the MERGE reads only the partitions it may change:

- type 1: the partitions of the touched keys' rows and of all their changes;
- type 2 (``CURRENT_VERSIONS``): the current versions only, when every key's new changes follow
  its applied ones (the versions before its last applied change cannot change); otherwise, and
  after a repair, every version of the touched keys, as an unpartitioned history is.

The partitions read include those where rows are inserted: two writers of the same keys then
read what the other writes, and one of their commits conflicts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.cdc.spec import AutoCdc
from lakehouse_dagster.cdc.transforms import (
    END_AT,
    IS_DELETE,
    START_AT,
    current_state,
    latest_changes,
    since_last_applied,
    versioned_instants,
    versions,
)
from lakehouse_dagster.ingest.sources import BATCH_ID
from lakehouse_dagster.joins import matching
from lakehouse_dagster.lake.delta import DeltaTables, Upsert
from lakehouse_dagster.lake.layout import TableName, quote_identifier, sql_literal


def create(tables: DeltaTables, target: TableName, spec: AutoCdc, changes: DataFrame) -> None:
    """The first build writes the state as the table's first commit, with no MERGE: a writer
    that created the table first makes this one fail (``ConcurrentWriteError``), and the unit's
    rerun then MERGEs into what the winner wrote."""
    with _whole_state(tables, target, spec, changes) as state:
        tables.create(target, state, partition_by=_by(spec))


def needs_rewrite(tables: DeltaTables, target: TableName, spec: AutoCdc) -> bool:
    """An existing table without its declared partition column: an earlier release's."""
    return spec.partition is not None and spec.partition.column not in tables.read(target).columns


def rewrite(tables: DeltaTables, target: TableName, spec: AutoCdc, changes: DataFrame) -> None:
    """The whole state computed again from every valid change, partitioned, in one commit."""
    with _whole_state(tables, target, spec, changes) as state:
        tables.overwrite(target, state, partition_by=_by(spec))


@contextmanager
def _whole_state(
    tables: DeltaTables, target: TableName, spec: AutoCdc, changes: DataFrame
) -> Iterator[DataFrame]:
    """The state of every key of ``changes``, with its partition column: the current rows, or
    the versions (their instants staged while it is read)."""
    if spec.config.scd_type == 1:
        yield _partitioned(spec, current_state(changes, spec.config))
        return
    with tables.materialized(target, versioned_instants(changes, spec.config)) as instants:
        yield _partitioned(spec, versions(instants, spec.config))


def merge_current_state(tables: DeltaTables, target: TableName, spec: AutoCdc, changes: DataFrame) -> None:
    config = spec.config
    latest = _partitioned(spec, latest_changes(changes, config))
    columns = (*config.output_columns, *_by(spec))
    target_filter = _partitions_read(tables, target, spec, changes) if spec.partition else None
    tables.merge(
        target,
        latest,
        Upsert(on=config.keys, columns=columns, delete_flag=IS_DELETE, target_filter=target_filter),
    )


#: What a type 2 MERGE read of the table (``lakehouse/versions_read``): the current versions only,
#: or every version of the touched keys.
CURRENT, EVERY = "current", "every"


def merge_history(
    tables: DeltaTables, target: TableName, spec: AutoCdc, changes: DataFrame, pending: Sequence[str]
) -> str:
    """The touched keys' recomputed versions merged into the table; their versions that no longer
    exist (a late change moved a boundary) are deleted in the same MERGE. ``changes``: every valid
    change of the touched keys; those of the ``pending`` batches are the new ones. Returns which
    versions of the table the MERGE read: ``CURRENT`` or ``EVERY``."""
    repaired = _remove_duplicated_versions(tables, target, spec, changes)
    config = spec.config
    with tables.materialized(target, versioned_instants(changes, config)) as instants:
        if spec.partition is not None and not repaired:
            new = F.col(BATCH_ID).isin(list(pending))
            with tables.materialized(target, since_last_applied(instants, changes, new, config)) as keys:
                in_order = keys.where(~F.col("_in_order")).isEmpty()
                if in_order and _current_as_applied(tables, target, spec, instants, keys):
                    return _merge_current_versions(tables, target, spec, instants, keys)
        recomputed = _partitioned(spec, versions(instants, config))
        existing = matching(tables.read(target), changes, config.keys)
        version_key = [*config.keys, START_AT]
        stale = existing.join(recomputed, version_key, "left_anti").select(*version_key).distinct()
        source = recomputed.withColumn("_stale", F.lit(False)).unionByName(
            stale.withColumn("_stale", F.lit(True)), allowMissingColumns=True
        )
        tables.merge(target, source, _history_upsert(spec))
        return EVERY


def _merge_current_versions(
    tables: DeltaTables, target: TableName, spec: AutoCdc, instants: DataFrame, keys: DataFrame
) -> str:
    """Every key's new changes follow its applied ones: only its versions from the one that holds
    its last applied change on are merged, and of the table only the current versions are read
    (the version that the last applied change left current is among them). A version closed
    already and inserted for a key that had no current version is written where no writer of
    the same key would read: then the closed versions are read too."""
    config = spec.config
    since = instants.join(keys.select(*config.keys, "_from_version", "_had_current"), list(config.keys))
    since = since.where(F.col("_version") >= F.col("_from_version"))
    source = _partitioned(spec, versions(since.drop("_from_version", "_had_current"), config))
    column = quote_identifier(spec.partition.column)
    without_current = keys.where(~F.col("_had_current")).select(*config.keys)
    with tables.materialized(target, source.withColumn("_stale", F.lit(False))) as source:
        closed_inserts = matching(source.where(F.col(END_AT).isNotNull()), without_current, list(config.keys))
        target_filter = None if not closed_inserts.isEmpty() else f"t.{column} = true"
        tables.merge(target, source, _history_upsert(spec, target_filter))
    return CURRENT if target_filter else EVERY


def _current_as_applied(
    tables: DeltaTables, target: TableName, spec: AutoCdc, instants: DataFrame, keys: DataFrame
) -> bool:
    """Whether the table's current versions of the touched keys are those the applied changes
    left: the start of each key's ``_from_version``, or none for a key without one. Not so after
    a run that committed its MERGE and died before recording its progress (its changes, still
    pending, are in the table already), or for a table the applied changes did not write."""
    config = spec.config
    column = quote_identifier(spec.partition.column)
    table = (
        tables.read(target).where(f"{column} = true").select(*config.keys, F.col(START_AT).alias("_in_table"))
    )
    starts = instants.where(F.col("_starts")).select(
        *config.keys, F.col("_version").alias("_from_version"), F.col("_sequence").alias("_applied")
    )
    expected = keys.join(starts, [*config.keys, "_from_version"], "left").select(
        *config.keys, F.when(F.col("_had_current"), F.col("_applied")).alias("_applied")
    )
    compared = expected.join(matching(table, keys, list(config.keys)), list(config.keys), "full")
    return compared.where(~F.col("_applied").eqNullSafe(F.col("_in_table"))).isEmpty()


def _history_upsert(spec: AutoCdc, target_filter: str | None = None) -> Upsert:
    return Upsert(
        on=(*spec.config.keys, START_AT),
        columns=(*spec.config.output_columns, START_AT, END_AT, *_by(spec)),
        delete_flag="_stale",
        null_safe=(START_AT,),  # a multi-column sequence's struct may hold a null field
        target_filter=target_filter,
    )


def _remove_duplicated_versions(
    tables: DeltaTables, target: TableName, spec: AutoCdc, changes: DataFrame
) -> bool:
    """A history written before ties were collapsed may hold a version of a touched key twice,
    which no MERGE can update (a source row would match two target rows). Delete every version
    of such keys first: the MERGE that follows inserts their recomputed history. Whether it did."""
    keys = list(spec.config.keys)
    touched = matching(tables.read(target), changes, keys)
    duplicated = touched.groupBy(*keys, START_AT).count().where(F.col("count") > 1).select(*keys).distinct()
    if duplicated.isEmpty():
        return False
    tables.delete_matching(target, duplicated, on=spec.config.keys)
    return True


def _partitions_read(tables: DeltaTables, target: TableName, spec: AutoCdc, changes: DataFrame) -> str:
    """Type 1: the partitions a MERGE of the touched keys' ``changes`` must read, as a condition
    on the target: those of the keys' rows in the table (a change may move a row to another
    partition, or delete it), and those of every one of their changes (where their rows may be
    inserted). Only the partition column and the keys of the table are read."""
    assert spec.partition is not None
    column, keys = spec.partition.column, list(spec.config.keys)
    current = matching(tables.read(target).select(*keys, column), changes, keys).select(column)
    anywhere = changes.select(_partition_value(spec).alias(column)).unionByName(current).distinct()
    values = [row[0] for row in anywhere.collect()]
    quoted = quote_identifier(column)
    known = [value for value in values if value is not None]
    parts = [f"t.{quoted} IN ({', '.join(sql_literal(value) for value in known)})"] if known else []
    if len(known) < len(values):
        parts.append(f"t.{quoted} IS NULL")
    return " OR ".join(parts) or "FALSE"


def _partitioned(spec: AutoCdc, state: DataFrame) -> DataFrame:
    """``state`` with its partition column, if the table has one."""
    return (
        state if spec.partition is None else state.withColumn(spec.partition.column, _partition_value(spec))
    )


def _partition_value(spec: AutoCdc) -> Column:
    assert spec.partition is not None
    return F.expr(spec.partition.expression)


def _by(spec: AutoCdc) -> tuple[str, ...]:
    return (spec.partition.column,) if spec.partition else ()
