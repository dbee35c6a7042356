"""The code location: ``dagster dev`` and ``dagster definitions validate`` load ``defs``."""

from __future__ import annotations

import warnings

import dagster as dg

from lakehouse_dagster.defs.assets import table_asset
from lakehouse_dagster.defs.jobs import build_jobs, build_schedules
from lakehouse_dagster.defs.resources import build_resources, executor_for
from lakehouse_dagster.defs.sensors import touched_partitions_sensor
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.units import ALL_UNITS


def build_definitions(settings: LakehouseSettings) -> dg.Definitions:
    lakehouse_job, sales_facts_job = build_jobs(ALL_UNITS)
    with warnings.catch_warnings():
        # Single-run backfill policies and schema-change checks are beta in Dagster 1.13; chosen on purpose.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = [table_asset(unit, settings) for unit in ALL_UNITS]
        schema_change_checks = dg.build_column_schema_change_checks(assets=assets)
    return dg.Definitions(
        assets=assets,
        # Compare each materialisation's dagster/column_schema with the one before.
        asset_checks=schema_change_checks,
        jobs=[lakehouse_job, sales_facts_job],
        schedules=build_schedules(lakehouse_job, sales_facts_job),
        sensors=[touched_partitions_sensor(sales_facts_job)],
        resources=build_resources(settings),
        executor=executor_for(settings),
    )


defs = build_definitions(LakehouseSettings.from_env())
