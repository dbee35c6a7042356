"""The code location: ``dagster dev`` and ``dagster definitions validate`` load ``defs``."""

from __future__ import annotations

import dagster as dg

from lakehouse_dagster.defs.assets import table_asset
from lakehouse_dagster.defs.jobs import daily_lakehouse_schedule, lakehouse_job
from lakehouse_dagster.defs.resources import build_resources, executor_for
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.units import ALL_UNITS


def build_definitions(settings: LakehouseSettings) -> dg.Definitions:
    return dg.Definitions(
        assets=[table_asset(unit, settings.as_of_date) for unit in ALL_UNITS],
        jobs=[lakehouse_job],
        schedules=[daily_lakehouse_schedule],
        resources=build_resources(settings),
        executor=executor_for(settings),
    )


defs = build_definitions(LakehouseSettings.from_env())
