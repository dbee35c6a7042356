"""AUTO CDC as pure transforms: changes in, current state or SCD2 history out.

The semantics are those of Delta Live Tables' AUTO CDC (``APPLY CHANGES``): per key, changes
are ordered by ``sequence_by`` (then by their position in the landed files); the latest
change wins, and a change matched by ``apply_as_deletes`` removes the key. Because a key's
state is computed from all its changes, late, duplicated and out-of-order deliveries give
the same result as in-order ones.

Changes of one key with the same sequence (one source transaction that touched a row twice)
are one instant: the last of them by position is what the instant leaves, so the history
never holds two versions starting at the same sequence. A change identical to one before it
(a file landed again under another name) is that change, at its first position.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse_dagster.cdc.spec import POSITION, CdcConfig

START_AT = "__START_AT"
END_AT = "__END_AT"
IS_DELETE = "__is_delete"


def _col(name: str) -> Column:
    return F.col("`" + name.replace("`", "``") + "`")


def sequence(config: CdcConfig) -> Column:
    """The sequence of a change: its column, or a struct of its columns compared in order."""
    if len(config.sequence_by) == 1:
        return _col(config.sequence_by[0])
    return F.struct(*(_col(c).alias(c) for c in config.sequence_by))


def _order(config: CdcConfig) -> list[Column]:
    return [*(_col(c) for c in config.sequence_by), *(_col(c) for c in POSITION)]


def flag_deletes(changes: DataFrame, config: CdcConfig) -> DataFrame:
    return changes.withColumn(IS_DELETE, F.coalesce(F.expr(config.apply_as_deletes), F.lit(False)))


def _last_per(
    changes: DataFrame, group: Sequence[str], config: CdcConfig, *, narrow_ties: bool = False
) -> DataFrame:
    """The last change (by sequence, then position) of each group of equal ``group`` values
    (null equals null).

    Only groups of several changes are sorted: a window over every change sorts all the columns
    of every row (3 to 4 times slower on the local engine), and most groups hold one change.
    With ``narrow_ties``, the sort sees only those groups' changes at their greatest first
    sequence value (groups changed many times: an order's status).
    """
    group_names = [f"__group_{i}" for i in range(len(group))]
    sizes = (
        changes.groupBy(*map(_col, group)).agg(F.count(F.lit(1)).alias("__size")).toDF(*group_names, "__size")
    )
    same_group = _same([*map(_col, group)], [*map(F.col, group_names)])
    sized = sizes.join(changes, same_group).drop(*group_names)  # hash table of the sizes, not the changes
    newest_first = Window.partitionBy(*map(_col, group)).orderBy(*(c.desc() for c in _order(config)))
    several = sized.where(F.col("__size") > 1)
    if narrow_ties:
        several = _at_greatest_first_sequence(several, group, config)
    several = _without_later_copies(several, config)
    last_of_several = (
        several.withColumn("_rank", F.row_number().over(newest_first))
        .where(F.col("_rank") == 1)
        .drop("_rank")
    )
    return sized.where(F.col("__size") == 1).select(*several.columns).unionByName(last_of_several)


def _without_later_copies(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """``changes`` without a change identical to one before it by position (the same values,
    operation and sequence): a file delivered again under another name. Kept, a copy of a
    change that ties with others on the sequence would be the last of them by position, and undo
    the ones between it and its original. (With DMS's change number in the sequence, copies tie
    with their original only, and are harmless; without it, ties are broken by position.)"""
    kept = dict.fromkeys([*config.columns, *config.sequence_by, IS_DELETE])  # the keys among the columns
    identity = [c for c in kept if c in changes.columns]
    file, line = POSITION
    # The first position as one text that sorts as (file, line), so that a hash aggregate finds it.
    at = F.concat(_col(file), F.lit("\u0000"), F.lpad(_col(line).cast("string"), 20, "0"))
    first = changes.groupBy(*map(_col, identity)).agg(F.min(at).alias("__at")).toDF(*identity, "__at")
    split = F.split(F.col("__at"), "\u0000")
    return first.select(*map(_col, identity), split[0].alias(file), split[1].cast("bigint").alias(line))


def _at_greatest_first_sequence(changes: DataFrame, keys: Sequence[str], config: CdcConfig) -> DataFrame:
    """The changes of each group of equal ``keys`` whose first sequence column holds the group's
    greatest value (all of them if that value is null): the only candidates to be its last
    change. A hash aggregate and a join keep about one change per group, so the sort that
    follows sees ties only (max skips nulls as the descending sort puts them last)."""
    key_names = [f"__key_{i}" for i in range(len(keys))]
    first = _col(config.sequence_by[0])
    greatest = (
        changes.groupBy(*map(_col, keys)).agg(F.max(first).alias("__greatest")).toDF(*key_names, "__greatest")
    )
    same = _same([*map(_col, keys), first], [*map(F.col, key_names), F.col("__greatest")])
    return greatest.join(changes, same).drop(*key_names, "__greatest")


def latest_changes(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """The latest change per key, with ``__is_delete``: what type 1 merges into the table."""
    return _last_per(flag_deletes(changes, config), config.keys, config, narrow_ties=True).select(
        *(_col(c) for c in config.output_columns), F.col(IS_DELETE)
    )


def current_state(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """SCD type 1: one row per key whose latest change is not a delete."""
    return latest_changes(changes, config).where(~F.col(IS_DELETE)).drop(IS_DELETE)


def _same(left: Sequence[Column], right: Sequence[Column]) -> Column:
    return reduce(
        lambda a, b: a & b, (a.eqNullSafe(b) for a, b in zip(left, right, strict=True)), F.lit(True)
    )


def history(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """SCD type 2: one row per version, with ``__START_AT`` and ``__END_AT`` (null while current).

    A version starts with the first change of a key, after a delete, or when a tracked column
    changes. A change to untracked columns only updates the version it falls in; a delete
    ends the current version.
    """
    return versions(versioned_instants(changes, config), config)


def versioned_instants(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """The first half of ``history``: each key's instants numbered in order (``_n``), with the
    version each belongs to (``_version``) and whether it starts it (``_starts``).

    ``versions`` reads this several times: stage it first (the engine does not reuse a subplan,
    and these windows are the costly part)."""
    keys = [_col(k) for k in config.keys]
    in_order = Window.partitionBy(*keys).orderBy(*(_col(c) for c in config.sequence_by))
    changes = without_headerless_copies(changes, config)
    # An instant is the only one of its key at its sequence, so the sequence orders a key's instants.
    numbered = (
        _last_per(flag_deletes(changes, config), (*config.keys, *config.sequence_by), config)
        .withColumn("_sequence", sequence(config))
        .withColumn("_n", F.row_number().over(in_order))
    )
    # The previous instant by a join on its number, not a ``lag`` over the window: the local
    # engine's lag of a struct costs 3.7 times a lag of one column (5.1 s against 1.4 s over 311k).
    tracked = [_col(c) for c in config.tracked_columns]
    previous = F.col("_previous")
    following = numbered.select(
        *keys,
        (F.col("_n") + 1).alias("_n"),
        F.struct(F.col(IS_DELETE).alias("deleted"), *tracked).alias("_previous"),
    )
    changed = ~_same(tracked, [previous.getField(c) for c in config.tracked_columns])
    starts = ~F.col(IS_DELETE) & (previous.isNull() | previous.getField("deleted") | changed)
    return (
        following.join(numbered, [*config.keys, "_n"], "right")
        .withColumn("_starts", starts)
        .drop("_previous")
        .withColumn(
            "_version",
            F.sum(F.col("_starts").cast("int")).over(in_order.rowsBetween(Window.unboundedPreceding, 0)),
        )
        .where(F.col("_version") > 0)
    )  # changes before a key's first insert or update have no version


def without_headerless_copies(changes: DataFrame, config: CdcConfig) -> DataFrame:
    """``changes`` without the copies of a change redelivered in a file that lacks the sequence's
    later columns (DMS's header columns: null there). A change (``Op`` present) with those columns
    null is such a copy when another change has the same values, the same first sequence value
    and the later columns: it is dropped. Kept, it would be an instant of its own, ordered first
    (a null sorts first), and start a version that never existed."""
    if len(config.sequence_by) < 2 or "Op" not in changes.columns:
        return changes
    later = config.sequence_by[1:]
    headerless = F.col("Op").isNotNull() & reduce(lambda a, b: a & b, (_col(c).isNull() for c in later))
    identity = [c for c in config.columns if c not in later]
    names = [f"__original_{i}" for i in range(len(identity))]
    with_header = reduce(lambda a, b: a & b, (_col(c).isNotNull() for c in later))
    originals = changes.where(with_header).select(*map(_col, identity)).distinct().toDF(*names)
    same = _same([*map(_col, identity)], [*map(F.col, names)])
    copies_dropped = changes.where(headerless).join(originals, same, "left_anti")
    return changes.where(~headerless).unionByName(copies_dropped)


def versions(instants: DataFrame, config: CdcConfig) -> DataFrame:
    """The second half of ``history``: a version's values are those of its last change that is
    not a delete; it starts at its first change and ends at its first delete or at the next
    version's start. Joins on row numbers, not aggregates of structs (slow on the local engine).
    Keys are never null (changes without a key are not applied)."""
    version = [*config.keys, "_version"]
    deleted = F.col(IS_DELETE)
    starts = instants.where(F.col("_starts")).select(*version, F.col("_sequence").alias(START_AT))
    last_values = instants.where(~deleted).groupBy(*version).agg(F.max("_n").alias("_n"))
    first_delete = instants.where(deleted).groupBy(*version).agg(F.min("_n").alias("_n"))
    deleted_at = first_delete.join(instants, [*version, "_n"]).select(
        *version, F.col("_sequence").alias("_deleted_at")
    )
    next_start = starts.select(
        *config.keys, (F.col("_version") - 1).alias("_version"), F.col(START_AT).alias("_next_start")
    )
    # The narrow side of each join on the left: the local engine builds its hash table from it.
    values = starts.join(last_values.join(instants, [*version, "_n"]), version)
    return (
        deleted_at.join(values, version, "right")
        .join(next_start, version, "left")
        .select(
            *(_col(c) for c in config.output_columns),
            F.col(START_AT),
            F.coalesce(F.col("_deleted_at"), F.col("_next_start")).alias(END_AT),
        )
    )


def since_last_applied(instants: DataFrame, changes: DataFrame, new: Column, config: CdcConfig) -> DataFrame:
    """Per key of ``instants`` (``versioned_instants`` of ``changes``), where the changes that
    ``new`` marks (those not applied yet) fall among the applied ones:

    - ``_in_order``: every instant holding a new change follows every instant holding an applied
      one. Only then are the key's versions before the last applied instant's left as they were;
    - ``_from_version``: the first version the new changes may alter: the one holding the last
      applied instant, or the next if that instant is a delete (it ended its version), or the first;
    - ``_had_current``: the applied changes left a current version (the last applied instant is not
      a delete).
    """
    keys = list(config.keys)
    grouping = [*keys, *config.sequence_by]
    marks = (
        changes.withColumn("_new", new)
        .groupBy(*map(_col, grouping))
        .agg(F.max(~F.col("_new")).alias("_has_applied"), F.max(F.col("_new")).alias("_has_new"))
        .toDF(*(f"__m{i}" for i in range(len(grouping))), "_has_applied", "_has_new")
    )
    marked_as = [F.col(f"__m{i}") for i in range(len(grouping))]
    # Keys are never null: equal keys let the engine hash-join; the sequence may hold a null.
    same_key = reduce(lambda a, b: a & b, (_col(k) == m for k, m in zip(keys, marked_as, strict=False)))
    same_instant = same_key & _same(list(map(_col, config.sequence_by)), marked_as[len(keys) :])
    marked = instants.join(marks, same_instant, "left").select(
        *keys, "_n", "_version", IS_DELETE, "_has_applied", "_has_new"
    )
    per_key = marked.groupBy(*keys).agg(
        F.max(F.when(F.col("_has_applied"), F.col("_n"))).alias("_last_applied"),
        F.min(F.when(F.col("_has_new"), F.col("_n"))).alias("_first_new"),
    )
    last = marked.select(*keys, F.col("_n").alias("_last_applied"), "_version", IS_DELETE)
    applied_last = per_key.join(last, [*keys, "_last_applied"], "left")
    ended = F.coalesce(F.col(IS_DELETE), F.lit(True))  # no applied instant: nothing current
    return applied_last.select(
        *keys,
        (
            F.col("_first_new").isNull()
            | F.col("_last_applied").isNull()
            | (F.col("_first_new") > F.col("_last_applied"))
        ).alias("_in_order"),
        F.when(F.col("_version").isNull(), F.lit(1))
        .when(ended, F.col("_version") + 1)
        .otherwise(F.col("_version"))
        .alias("_from_version"),
        (~ended).alias("_had_current"),
    )
