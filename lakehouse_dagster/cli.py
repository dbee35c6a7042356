"""``make run``: land sample data if the landing zone is empty, run every asset (the warehouse
is loaded by the serving assets), print gold, the warehouse and where the dashboard is.

    DAGSTER_HOME=.dagster_home python -m lakehouse_dagster.cli run

First the registry's default job (every table that is not partitioned, bronze to gold), then,
for each daily partitioning, its job over every day of its data (``DailyPartitions.days_from``)
as one single-run backfill. The runs are recorded in the Dagster instance at ``DAGSTER_HOME``,
so ``dagster dev`` shows them afterwards with their metadata and check results.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from lakehouse_dagster.declarations.table import Registry
from lakehouse_dagster.declarations.timing import DailyPartitions
from lakehouse_dagster.defs.partitions import existing_partition_days, partitions_definition, range_tags
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.layout import is_remote
from lakehouse_dagster.serving.postgres import PostgresWarehouse

SAMPLE_ROWS, SAMPLE_FILES, SAMPLE_SEED = 20_000, 6, 7
SAMPLE_RETAIL_DAYS = 30
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _registry() -> Registry:
    from lakehouse_dagster.registry import REGISTRY

    return REGISTRY


def _job(name: str) -> dg.JobDefinition:
    from lakehouse_dagster.definitions import build_definitions

    return build_definitions(LakehouseSettings.from_env()).resolve_job_def(name)


def job_by_name(name: str) -> dg.JobDefinition:
    """Module-level, so that Dagster can rebuild the job in the run's process, from the
    environment as it is now."""
    return _job(name)


def _reconstructable(job_name: str) -> dg.ReconstructableJob:
    return dg.build_reconstructable_job(
        "lakehouse_dagster.cli", "job_by_name", reconstructable_args=(job_name,)
    )


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


def query(sql: str, **tables: str) -> pd.DataFrame:
    """SQL over Delta tables by path, with delta-rs's engine.

    Not ``DeltaTable.to_pandas()``: its pyarrow dataset may still hold a Python filesystem when
    the interpreter exits, and freeing it then aborts the process (seen with pyarrow 26).
    """
    import deltalake
    import pyarrow as pa

    builder = deltalake.QueryBuilder()
    for name, uri in tables.items():
        builder = builder.register(name, deltalake.DeltaTable(uri))
    return pa.table(builder.execute(sql).read_all()).to_pandas()


def days_with_data(settings: LakehouseSettings, partitions: DailyPartitions) -> list[date]:
    """The days of the partitioning's data (its ``days_from`` column), in the lake now."""
    import deltalake

    if partitions.days_from is None:
        return []
    table, column = partitions.days_from
    uri = settings.layout.table_uri(table)
    if not deltalake.DeltaTable.is_deltatable(uri):
        return []
    days = query(
        f'SELECT DISTINCT CAST("{column}" AS DATE) AS day FROM t WHERE "{column}" IS NOT NULL', t=uri
    )
    return list(days["day"])


def _check_status(evaluation: dg.AssetCheckEvaluation) -> str:
    status = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
    failed, passed = (evaluation.metadata.get(key) for key in ("failed_records", "passed_records"))
    if failed is not None and passed is not None:
        status += f"  {failed.value:,} of {failed.value + passed.value:,} rows"
    return status


def print_summary(result: dg.ExecutionResult) -> None:
    """Per asset: rows, Delta version, partitions written, and its checks with their counts."""
    print(f"\nrun {result.run_id} ({result.job_def.name}): {'SUCCESS' if result.success else 'FAILURE'}")
    materialized: dict[str, tuple[dict, list[str]]] = {}
    checks: dict[str, dict[str, str]] = {}
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            key = materialization.asset_key.to_user_string()
            partitions = materialized.setdefault(key, (materialization.metadata, []))[1]
            if materialization.partition:
                partitions.append(materialization.partition)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            key = evaluation.asset_check_key.asset_key.to_user_string()
            checks.setdefault(key, {})[evaluation.asset_check_key.name] = _check_status(evaluation)
    for key, (metadata, partitions) in materialized.items():
        rows, version = metadata.get("dagster/row_count"), metadata.get("lakehouse/delta_version")
        written = f" [{partitions[0]} .. {partitions[-1]}: {len(partitions)} days]" if partitions else ""
        where = f"delta version={version.value}" if version else "loaded into the warehouse"
        print(f"  {key}{written}  rows={rows.value:,}  {where}")
        for name, status in checks.get(key, {}).items():
            print(f"    check {name:34} {status}")


def print_gold(settings: LakehouseSettings, registry: Registry) -> None:
    """A few rows of every gold table: the latest day of a partitioned one."""
    import deltalake

    for table in registry.tables:
        if table.name.layer != "gold":
            continue
        uri = settings.layout.table_uri(table.name)
        if not deltalake.DeltaTable.is_deltatable(uri):
            continue
        if table.partitions is not None:
            column = table.partitions.column
            sql = f"SELECT * FROM t WHERE {column} = (SELECT max({column}) FROM t) LIMIT 8"
        else:
            sql = "SELECT * FROM t LIMIT 8"
        rows = query(sql, t=uri)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dagster.cli")
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)

    settings = LakehouseSettings.from_env()
    registry = _registry()
    land_sample_data_if_empty(settings)
    with dg.DagsterInstance.get() as instance:
        first = dg.execute_job(
            _reconstructable(registry.default_job.name), instance=instance, run_config=QUIET
        )
        print_summary(first)
        if not first.success:
            return 1
        for partitions in registry.partitionings():
            definition = partitions_definition(partitions, settings.partitions_start)
            in_range = existing_partition_days(days_with_data(settings, partitions), definition)
            if not in_range:
                continue
            result = dg.execute_job(
                _reconstructable(partitions.job.name),
                instance=instance,
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
