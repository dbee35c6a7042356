"""``make run``: land sample data if the landing zone is empty, run every asset, print gold.

    DAGSTER_HOME=.dagster_home python -m lakehouse_dagster.cli run

The run is recorded in the Dagster instance at ``DAGSTER_HOME``, so ``dagster dev`` shows it
afterwards with its metadata and check results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dagster as dg

from lakehouse_dagster.defs.jobs import LAKEHOUSE_JOB_NAME
from lakehouse_dagster.deployment import Deployment, LakehouseSettings
from lakehouse_dagster.lake import files
from lakehouse_dagster.lake.layout import TableName, is_remote
from lakehouse_dagster.sample_data.customers import generate_customers

SAMPLE_ROWS, SAMPLE_FILES, SAMPLE_SEED = 20_000, 6, 7


def lakehouse_job() -> dg.JobDefinition:
    """Module-level, so that Dagster can rebuild the job in the run's process, from the
    environment as it is now."""
    from lakehouse_dagster.definitions import build_definitions

    return build_definitions(LakehouseSettings.from_env()).resolve_job_def(LAKEHOUSE_JOB_NAME)


def land_sample_data_if_empty(settings: LakehouseSettings) -> None:
    landing = settings.layout.landing
    if settings.deployment is Deployment.PROD or is_remote(landing):
        return
    if not files.list_files(settings.layout.landing_uri("customers"), ".csv"):
        written = generate_customers(Path(landing), rows=SAMPLE_ROWS, files=SAMPLE_FILES, seed=SAMPLE_SEED)
        print(f"landing zone was empty: wrote {len(written)} sample customer files under {landing}/customers")


def print_summary(result: dg.ExecutionResult) -> None:
    print(f"\nrun {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
    for event in result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            metadata = materialization.metadata
            rows = metadata.get("dagster/row_count")
            version = metadata.get("lakehouse/delta_version")
            print(
                f"  {materialization.asset_key.to_user_string():28} rows={rows.value if rows else '?':>8}"
                f"  delta version={version.value if version else '?'}"
            )
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            status = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
            print(f"    check {evaluation.asset_check_key.name:34} {status}")


def print_gold(settings: LakehouseSettings) -> None:
    import deltalake

    uri = settings.layout.table_uri(TableName("gold", "customer_segments"))
    frame = (
        deltalake.DeltaTable(uri)
        .to_pandas()
        .sort_values(["customer_segment", "customers"], ascending=[True, False])
    )
    print(f"\ngold.customer_segments ({uri}), top countries per segment:")
    print(frame.groupby("customer_segment").head(3).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakehouse_dagster.cli")
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)

    settings = LakehouseSettings.from_env()
    land_sample_data_if_empty(settings)
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(lakehouse_job),
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        print_summary(result)
        if not result.success:
            return 1
    print_gold(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
