"""Both domains run through Dagster into a real PostgreSQL warehouse, with Glue on a moto
server: built once per session for the serving and dashboard tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import boto3
import dagster as dg
import psycopg
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.defs.partitions import range_tags
from lakehouse_dagster.deployment import Deployment, LakehouseSettings, WarehouseSettings
from lakehouse_dagster.engine.settings import EngineSettings
from lakehouse_dagster.lake.layout import LakeLayout
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster.sample_data.retail import simulate_retail, write_landing

AS_OF = date(2026, 11, 26)
RUN_CONFIG = {
    "ops": {
        "silver__customers": {"config": {"as_of_date": AS_OF.isoformat()}},
        "gold__customer_360": {"config": {"as_of_date": AS_OF.isoformat()}},
    }
}
GLUE_DATABASE = "lake"
REGION = "us-east-1"


class ServedPipeline:
    def __init__(self, settings: LakehouseSettings, layout: LakeLayout, moto_url: str) -> None:
        self.settings = settings
        self.layout = layout
        self.moto_url = moto_url
        self.defs = build_definitions(settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.results: list[dg.ExecuteInProcessResult] = []
        self.days: list[date] = []

    @property
    def warehouse_url(self) -> str:
        assert self.settings.warehouse.url is not None
        return self.settings.warehouse.url

    @contextmanager
    def aws(self) -> Iterator[None]:
        """AWS clients (Glue registrations) talk to the moto server while a run lasts."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AWS_ENDPOINT_URL", self.moto_url)
            patch.setenv("AWS_ACCESS_KEY_ID", "testing")
            patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            yield

    def run(self, job: str, **kwargs) -> dg.ExecuteInProcessResult:
        with self.aws():
            result = self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, **kwargs)
        assert result.success
        self.results.append(result)
        return result

    def warehouse(self, sql: str, parameters=()) -> list[tuple]:
        with psycopg.connect(self.warehouse_url) as connection:
            return connection.execute(sql, parameters).fetchall()

    def glue_tables(self) -> dict[str, dict]:
        with self.aws():
            glue = boto3.client("glue", region_name=REGION)
            return {t["Name"]: t for t in glue.get_tables(DatabaseName=GLUE_DATABASE)["TableList"]}


def build_served_pipeline(sail_url: str, root: Path, warehouse_url: str, moto_url: str) -> ServedPipeline:
    layout = LakeLayout.local(str(root / "lake"))
    landing = Path(layout.landing)
    generate_customers(landing, rows=300, files=2, seed=3)
    simulation = simulate_retail(days=4, seed=3, customers=80, products=20, orders_per_day=20)
    write_landing(simulation, landing)
    settings = LakehouseSettings(
        Deployment.TEST,
        layout,
        EngineSettings(remote_url=sail_url),
        warehouse=WarehouseSettings(url=warehouse_url, glue_database=GLUE_DATABASE, region=REGION),
    )
    pipeline = ServedPipeline(settings, layout, moto_url)
    with pipeline.aws():
        boto3.client("glue", region_name=REGION).create_database(DatabaseInput={"Name": GLUE_DATABASE})
    pipeline.run("lakehouse_job", run_config=RUN_CONFIG)
    pipeline.days = sorted(
        {date.fromisoformat(ts[:10]) for ts in simulation.truth.tables["orders"]["order_ts"]}
    )
    pipeline.run("sales_facts_job", tags=range_tags(pipeline.days[0], pipeline.days[-1]))
    return pipeline
