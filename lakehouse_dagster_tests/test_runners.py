"""The runner seam: the same asset through the in-process and the subprocess runner gives the
same tables, metadata and check results, a failing ``fail`` expectation included."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from lakehouse_dagster.declarations.table import load_registry
from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import LakehouseSettings, UnitRunnerKind
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import LakeLayout, TableName
from lakehouse_dagster.runners.in_process import InProcessRunner
from lakehouse_dagster.runners.subprocess import SubprocessRunner
from lakehouse_dagster.sample_data.customers import generate_customers
from lakehouse_dagster_tests.registries import STRICT_SEGMENTS
from lakehouse_dagster_tests.units import AS_OF

REGISTRY_PATH = "lakehouse_dagster_tests.registries:CUSTOMERS_AND_STRICT"
TABLES = [TableName.parse(n) for n in ("bronze.customers", "silver.customers", "gold.customer_segments")]
#: What differs between two builds of the same files: where they are, and when they ran.
VOLATILE_METADATA = {"dagster/uri", "lakehouse/batches"}
VOLATILE_COLUMNS = ["_ingested_at", "_batch_id", "_run_id", "_quarantined_at"]


def build(kind: UnitRunnerKind, root: Path, landing: Path, sail_url: str, monkeypatch) -> tuple:
    env = {
        "LAKEHOUSE_DEPLOYMENT": "test",
        "LAKEHOUSE_ROOT": str(root),
        "LAKEHOUSE_LANDING": str(landing),
        "LAKEHOUSE_SPARK_REMOTE": sail_url,
        "LAKEHOUSE_UNIT_RUNNER": kind.value,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the subprocess runner's child reads the same environment
    settings = LakehouseSettings.from_env()
    defs = build_definitions(settings, REGISTRY_PATH)
    assert type(defs.resources["runner"]) is (
        SubprocessRunner if kind is UnitRunnerKind.SUBPROCESS else InProcessRunner
    )
    config = {"ops": {"silver__customers": {"config": {"as_of_date": AS_OF.isoformat()}}}}
    units = [dg.AssetKey(t.name.key_path) for t in load_registry(REGISTRY_PATH).tables]  # not serving
    result = defs.resolve_job_def("all_job").execute_in_process(
        run_config=config,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        asset_selection=units,
    )
    return settings, result


def materialized(result) -> dict[str, dict]:
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = {k: v.value for k, v in materialization.metadata.items() if k not in VOLATILE_METADATA}
        if "dagster/column_schema" in metadata:
            metadata["dagster/column_schema"] = [
                (c.name, c.type, c.description) for c in metadata["dagster/column_schema"].columns
            ]
        if "dagster/column_lineage" in metadata:
            metadata["dagster/column_lineage"] = sorted(
                (column, dep.asset_key.to_user_string(), dep.column_name)
                for column, deps in metadata["dagster/column_lineage"].deps_by_column.items()
                for dep in deps
            )
        found[materialization.asset_key.to_user_string()] = metadata
    return found


def checks(result) -> set[tuple]:
    return {
        (e.asset_key.to_user_string(), e.check_name, e.passed, e.severity.value, _failed(e))
        for e in result.get_asset_check_evaluations()
    }


def _failed(evaluation) -> int | None:
    value = evaluation.metadata.get("failed_records")
    return value.value if value is not None else None


def table(tables: DeltaTables, name: TableName) -> pd.DataFrame:
    frame = tables.read(name).toPandas().drop(columns=VOLATILE_COLUMNS, errors="ignore")
    frame = frame.apply(
        lambda column: column.map(
            lambda v: tuple(v) if hasattr(v, "__len__") and not isinstance(v, str) else v
        )
    )
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.fixture
def builds(tmp_path, sail_url, spark, monkeypatch):
    landing = tmp_path / "landing"
    generate_customers(landing, rows=500, files=3, seed=21)
    results = {
        kind: build(kind, tmp_path / kind.value, landing, sail_url, monkeypatch)
        for kind in (UnitRunnerKind.IN_PROCESS, UnitRunnerKind.SUBPROCESS)
    }
    return {
        kind: (DeltaTables(spark, LakeLayout.local(str(tmp_path / kind.value), str(landing))), result)
        for kind, (_settings, result) in results.items()
    }


def test_both_runners_write_the_same_tables_and_report_the_same_metadata_and_checks(builds) -> None:
    (here_tables, here), (child_tables, child) = builds.values()

    reported = [TableName("quarantine", "customers"), TableName("ops", "data_quality")]
    assert materialized(here).keys() == {"/".join(n.key_path) for n in [*TABLES, *reported]}
    assert materialized(here) == materialized(child)
    assert checks(here) == checks(child)
    for name in TABLES:
        pd.testing.assert_frame_equal(table(here_tables, name), table(child_tables, name))
    quarantine = TableName("quarantine", "customers")
    pd.testing.assert_frame_equal(table(here_tables, quarantine), table(child_tables, quarantine))


def test_a_failing_fail_expectation_shows_as_failed_checks_and_a_failed_step_in_both_runners(builds) -> None:
    for tables, result in builds.values():
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        assert failure.step_key == "gold__strict_segments"
        assert "ExpectationFailedError" in failure.event_specific_data.error.message
        assert "'no_customers'" in failure.event_specific_data.error.message
        strict = {
            (e.check_name, e.passed)
            for e in result.get_asset_check_evaluations()
            if e.asset_key == dg.AssetKey(STRICT_SEGMENTS.key_path)
        }
        assert strict == {("no_customers", False), ("counts_customers", True)}
        assert not tables.exists(STRICT_SEGMENTS), "nothing was written"
    assert checks(builds[UnitRunnerKind.IN_PROCESS][1]) == checks(builds[UnitRunnerKind.SUBPROCESS][1])
