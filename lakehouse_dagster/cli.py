"""``make run``: land sample data if the landing zone is empty, run every asset (the warehouse
is loaded by the serving assets), print gold, the warehouse and where the dashboard is.

    DAGSTER_HOME=.dagster_home python -m lakehouse_dagster.cli run

First the registry's default job (every table that is not partitioned, bronze to gold), then,
for each daily partitioning, its job over every day of its data (``DailyPartitions.days_from``)
as one single-run backfill. The runs are recorded in the Dagster instance at ``DAGSTER_HOME`` as
runs of the workspace's code location (``launch.py``), so ``dagster dev`` shows them afterwards in
the jobs' Runs tabs, with their metadata and check results, and re-executes them.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import dagster as dg

from lakehouse_dagster.declarations.table import Registry
from lakehouse_dagster.declarations.timing import DailyPartitions
from lakehouse_dagster.defs.partitions import existing_partition_days, partitions_definition, range_tags
from lakehouse_dagster.deployment import Deployment, LakehouseSettings, SettingsError
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.layout import is_remote
from lakehouse_dagster.lake.snapshots import is_delta_table, query
from lakehouse_dagster.launch import code_location, release_dead_runs, run_job
from lakehouse_dagster.quality.thresholds import ThresholdsError
from lakehouse_dagster.serving.postgres import PostgresWarehouse

SAMPLE_ROWS, SAMPLE_FILES, SAMPLE_SEED = 20_000, 6, 7
# 150 days (and the 30 days of orders before them): enough history for the churn model to train on
# feature dates whose 60-day label windows end before its holdout's.
SAMPLE_RETAIL_DAYS = 150
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _registry() -> Registry:
    from lakehouse_dagster.registry import REGISTRY

    return REGISTRY


def land_sample_data_if_empty(settings: LakehouseSettings) -> None:
    landing = settings.layout.landing
    if settings.deployment is Deployment.PROD or is_remote(landing):
        return
    if not files.list_files(settings.layout.landing_uri("customers"), ".csv"):
        from lakehouse_dagster.sample_data.customers import generate_customers

        written = generate_customers(Path(landing), rows=SAMPLE_ROWS, files=SAMPLE_FILES, seed=SAMPLE_SEED)
        print(f"landing zone was empty: wrote {len(written)} sample customer files under {landing}/customers")
    if not files.list_files(settings.layout.landing_uri("dms"), ".csv"):
        from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing

        simulation = simulate_retail(days=SAMPLE_RETAIL_DAYS, seed=SAMPLE_SEED)
        written = write_landing(simulation, Path(landing))
        print(f"landing zone had no DMS files: wrote {len(written)} sample DMS files under {landing}/dms")


def days_with_data(settings: LakehouseSettings, partitions: DailyPartitions) -> list[date]:
    """The days of the partitioning's data (its ``days_from`` column), in the lake now."""
    if partitions.days_from is None:
        return []
    table, column = partitions.days_from
    uri = settings.layout.table_uri(table)
    if not is_delta_table(uri):
        return []
    days = query(
        f'SELECT DISTINCT CAST("{column}" AS DATE) AS day FROM t WHERE "{column}" IS NOT NULL', t=uri
    ).to_pandas()
    return list(days["day"])


def _check_status(evaluation: dg.AssetCheckEvaluation) -> str:
    status = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
    description = (evaluation.description or "").splitlines()[0] if evaluation.description else ""
    shown = description if len(description) <= _DESCRIPTION else description[: _DESCRIPTION - 1] + "…"
    return f"{status:14} {shown}".rstrip()


_DESCRIPTION = 100


def _rows(metadata: dict) -> str:
    """The table's rows: ``dagster/row_count``, or ``lakehouse/table_rows`` of a partitioned write
    (whose ``dagster/row_count`` is the last day's)."""
    for key in ("lakehouse/table_rows", "lakehouse/range_rows", "dagster/row_count"):
        if key in metadata:
            return f"{metadata[key].value:,}"
    return "?"


def print_summary(result: dg.ExecutionResult) -> None:
    """Per asset: rows, Delta version, partitions written, its checks, and the quarantine and
    quality records it reported."""
    run = result.dagster_run
    print(f"\nrun {run.run_id} ({run.job_name}): {'SUCCESS' if result.success else 'FAILURE'}")
    materialized: dict[str, tuple[dict, list[str]]] = {}
    checks: dict[str, dict[str, str]] = {}
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            name = materialization.asset_key.path[-1]
            entry = materialized.setdefault(name, ({}, []))
            entry[0].update(materialization.metadata)  # a ranged write's figures come with its last day
            if materialization.partition:
                entry[1].append(materialization.partition)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = evaluation.asset_check_key.asset_key.path[-1]
            checks.setdefault(name, {})[evaluation.asset_check_key.name] = _check_status(evaluation)
    for name, (metadata, partitions) in materialized.items():
        version = metadata.get("lakehouse/delta_version")
        written = f" [{partitions[0]} .. {partitions[-1]}: {len(partitions)} days]" if partitions else ""
        where = f"delta version={version.value}" if version else "loaded into the warehouse"
        print(f"  {name}{written}  rows={_rows(metadata)}  {where}")
        for check, status in checks.get(name, {}).items():
            print(f"    check {check:30} {status}")


def _warn_outside(
    partitions: DailyPartitions, definition: dg.DailyPartitionsDefinition, days: list[date], built: list[date]
) -> None:
    """Say which days of data no partition covers: before the first day, or not over yet."""
    outside = sorted(set(days) - set(built))
    if outside:
        first = definition.start.date()
        print(
            f"note: {len(outside)} day(s) of {partitions.name} data are not partitions and are not built "
            f"({outside[0]} .. {outside[-1]}); the partitions run from {first} (LAKEHOUSE_PARTITIONS_START) "
            "to yesterday (UTC)"
        )


def print_gold(settings: LakehouseSettings, registry: Registry) -> None:
    """A few rows of every gold table: the latest day of a partitioned one."""
    for table in registry.tables:
        if table.name.layer != "gold":
            continue
        uri = settings.layout.table_uri(table.name)
        if not is_delta_table(uri):
            continue
        # The same rows every time: in key order (the first columns without a key).
        order = ", ".join(f'"{column}"' for column in table.primary_key) or "1, 2"
        if table.partitions is not None:
            column = table.partitions.column
            sql = f"SELECT * FROM t WHERE {column} = (SELECT max({column}) FROM t) ORDER BY {order} LIMIT 8"
        else:
            sql = f"SELECT * FROM t ORDER BY {order} LIMIT 8"
        rows = query(sql, t=uri).to_pandas()
        print(f"\n{table.name} ({'latest day' if table.partitions else 'first rows'}):")
        print(rows.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


DASHBOARD_URL = "http://127.0.0.1:8501"


def print_warehouse(settings: LakehouseSettings, registry: Registry) -> None:
    """Rows and last load of every served table, and how to look at them."""
    from lakehouse_dagster.defs.resources import warehouse_resource

    warehouse = warehouse_resource(settings)
    print("\nwarehouse:")
    for table in registry.served():
        served = table.served
        assert served is not None
        loaded = warehouse.loaded_at(served)
        if loaded:
            when = f"loaded {loaded:%Y-%m-%d %H:%M:%S %Z}"
        elif registry.follows_a_stream(table):
            when = "follows a stream: loaded by declarative automation once one runs (`make aws-local`)"
        else:
            when = "not loaded yet"
        print(f"  {served.qualified:28} rows={warehouse.row_count(served) or 0:,}  {when}")
    if isinstance(warehouse, PostgresWarehouse):
        print(f"  PostgreSQL: {warehouse.resolved_url()}  (psql, or any BI tool: see README)")
    print(f"\ndashboard: `make dashboard`, then open {DASHBOARD_URL}")


def check(settings: LakehouseSettings) -> int:
    """The settings, the tables' declarations and the thresholds file against them, as the code
    location checks them when it loads (a mistake is refused here, not at ``dagster dev``)."""
    from lakehouse_dagster.definitions import check_thresholds

    try:
        registry = _registry()
    except ValueError as error:  # a declaration refused when the registry is built
        print(f"error: the tables' declarations: {error}", file=sys.stderr)
        return 2
    try:
        check_thresholds(settings, registry)
    except ThresholdsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"settings: {settings.deployment.value} deployment, lake at {settings.layout.root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dagster.cli")
    parser.add_argument(
        "command",
        choices=["run", "check"],
        help="run: materialise everything; check: the settings and the thresholds file only",
    )
    command = parser.parse_args(argv).command
    try:
        settings = LakehouseSettings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if command == "check":
        return check(settings)
    registry = _registry()
    land_sample_data_if_empty(settings)
    with dg.DagsterInstance.get() as instance, code_location(instance) as location:
        for line in release_dead_runs(instance):
            print(line)
        first = run_job(instance, location, registry.default_job.name, run_config=QUIET)
        print_summary(first)
        if not first.success:
            return 1
        for partitions in registry.partitionings():
            definition = partitions_definition(partitions, settings.partitions_start)
            days = days_with_data(settings, partitions)
            in_range = existing_partition_days(days, definition)
            _warn_outside(partitions, definition, days, in_range)
            if not in_range:
                continue
            result = run_job(
                instance,
                location,
                partitions.job.name,
                run_config=QUIET,
                tags=range_tags(in_range[0], in_range[-1]),
            )
            print_summary(result)
            if not result.success:
                return 1
    print_gold(settings, registry)
    print_warehouse(settings, registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
