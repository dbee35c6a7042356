"""The schema-change check of every asset, evaluated in the step that writes the asset.

It compares the schema just written with the schema of the asset's previous materialisation
(the latest one before this step that reports a ``dagster/column_schema``: a ranged run
reports the schema once, with its last day). Dagster's ``build_column_schema_change_checks``
compares the two latest materialisation events instead, which after a ranged run are two days
of the same run, and it runs as a step of its own named ``asset_check_<hash>``.
"""

# No ``from __future__ import annotations``: Dagster inspects annotations of what it decorates.

import dagster as dg

SCHEMA_CHANGE_CHECK = "column_schema_change"
COLUMN_SCHEMA = "dagster/column_schema"
#: Materialisation records read per page while looking for the previous schema.
_PAGE = 500


def schema_change_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        SCHEMA_CHANGE_CHECK,
        asset=key,
        description="The columns and their types are those of the previous materialisation.",
    )


def previous_schema(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[dg.TableSchema, str] | None:
    """The schema of the latest materialisation of ``key`` that reports one, and its run."""
    cursor = None
    while True:
        page = instance.fetch_materializations(key, limit=_PAGE, cursor=cursor, ascending=False)
        for record in page.records:
            materialization = record.asset_materialization
            value = materialization.metadata.get(COLUMN_SCHEMA) if materialization else None
            if value is not None:
                return value.schema, record.run_id
        if not page.has_more:
            return None
        cursor = page.cursor


def schema_change_result(
    instance: dg.DagsterInstance, key: dg.AssetKey, schema: dg.TableSchema
) -> dg.AssetCheckResult:
    """Passes when ``schema`` has the columns and types of the previous materialisation."""
    previous = previous_schema(instance, key)
    if previous is None:
        return dg.AssetCheckResult(
            check_name=SCHEMA_CHANGE_CHECK,
            asset_key=key,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="First materialisation with a schema: nothing to compare with",
        )
    before, run_id = previous
    old = {column.name: column.type for column in before.columns}
    new = {column.name: column.type for column in schema.columns}
    added = [name for name in new if name not in old]
    removed = [name for name in old if name not in new]
    retyped = [
        f"{name}: {old[name]} -> {new[name]}" for name in new if name in old and old[name] != new[name]
    ]
    changes = [
        f"{what}: {', '.join(names)}"
        for what, names in (("added", added), ("removed", removed), ("type changed", retyped))
        if names
    ]
    return dg.AssetCheckResult(
        check_name=SCHEMA_CHANGE_CHECK,
        asset_key=key,
        passed=not changes,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"Since run {run_id[:8]}: {'; '.join(changes)}"
        if changes
        else f"Same columns and types as in run {run_id[:8]}",
        metadata={
            "added_columns": added,
            "removed_columns": removed,
            "type_changes": retyped,
            "compared_with_run": run_id,
        },
    )
