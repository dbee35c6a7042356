"""The runner seam: the same asset through the in-process and the subprocess runner gives the
same tables, metadata and check results, a failing ``fail`` expectation included."""

from __future__ import annotations

import os
import time
import types
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
from lakehouse_dagster.units.report import UnitResult
from lakehouse_dagster.units.request import UnitRequest
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


#: A registry module whose import writes lines to stderr, one write each, then kills the process:
#: a child that dies without a report, before it starts an engine.
DYING_CHILD = """
import os, time
for i in range({lines}):
    os.write(2, b"dying child line %d\\n" % i)
    time.sleep(0.001)
os._exit(7)
"""


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_a_child_that_dies_shows_every_line_it_logged_and_its_last_lines(tmp_path, monkeypatch) -> None:
    lines = 100
    (tmp_path / "dying_child.py").write_text(DYING_CHILD.format(lines=lines))
    child_environment(tmp_path, monkeypatch)
    written = [f"dying child line {i}" for i in range(lines)]
    table = load_registry(REGISTRY_PATH).table("silver.customers")
    request = UnitRequest("silver.customers", AS_OF)

    for _ in range(3):  # the lines used to go to one of two readers at random: each run loses some
        log = RecordingLog()
        result = SubprocessRunner(registry="dying_child:REGISTRY").run(
            types.SimpleNamespace(log=log), table, request
        )
        assert log.lines == written, "every line the child wrote is in the run's log, in order"
        assert result.error is not None and result.error.kind == "ProcessDied"
        assert "exited with status 7" in result.error.message
        assert result.error.traceback == "\n".join(written[-30:])


#: A child that leaves a process holding its stdout and stderr, then dies.
LEAKY_CHILD = """
import os, subprocess
subprocess.Popen(["sleep", "20"])  # inherits the pipes
os.write(2, b"leaving a sleeper behind\\n")
os._exit(9)
"""


def test_a_process_the_child_left_holding_its_pipes_does_not_hold_the_step(tmp_path, monkeypatch) -> None:
    (tmp_path / "leaky_child.py").write_text(LEAKY_CHILD)
    child_environment(tmp_path, monkeypatch)
    table = load_registry(REGISTRY_PATH).table("silver.customers")
    started = time.monotonic()

    result = SubprocessRunner(registry="leaky_child:REGISTRY", timeout_seconds=60).run(
        types.SimpleNamespace(log=RecordingLog()), table, UnitRequest("silver.customers", AS_OF)
    )

    assert time.monotonic() - started < 15, "not the sleeper's 20 seconds"
    assert result.error is not None and "exited with status 9" in result.error.message
    assert "leaving a sleeper behind" in result.error.traceback


#: A child that prints its report without a newline and leaves a process holding its pipes.
REPORTING_CHILD = """
import os, subprocess
subprocess.Popen(["sleep", "20"])
os.write(1, {report!r}.encode())
os._exit(0)
"""


def test_a_report_without_its_newline_is_read_though_the_pipes_stay_open(tmp_path, monkeypatch) -> None:
    report = UnitResult("silver.customers", metadata={"lakehouse/note": "é" * 40_000}).to_json()
    (tmp_path / "reporting_child.py").write_text(REPORTING_CHILD.format(report=report))
    child_environment(tmp_path, monkeypatch)
    table = load_registry(REGISTRY_PATH).table("silver.customers")

    result = SubprocessRunner(registry="reporting_child:REGISTRY", timeout_seconds=60).run(
        types.SimpleNamespace(log=RecordingLog()), table, UnitRequest("silver.customers", AS_OF)
    )

    assert result.error is None
    assert result.metadata["lakehouse/note"] == "é" * 40_000, "whole, split characters included"


def test_a_request_larger_than_a_command_line_argument_reaches_the_child(
    tmp_path, sail_url, monkeypatch
) -> None:
    # A file sensor's run of 1000 named files with long URIs: over Linux's 128 KiB for one argument.
    layout = LakeLayout.local(str(tmp_path / "lake"), str(tmp_path / "landing"))
    for name, value in {
        "LAKEHOUSE_DEPLOYMENT": "test",
        "LAKEHOUSE_ROOT": layout.root,
        "LAKEHOUSE_LANDING": layout.landing,
        "LAKEHOUSE_SPARK_REMOTE": sail_url,
    }.items():
        monkeypatch.setenv(name, value)
    (landed,) = generate_customers(Path(layout.landing), rows=50, files=1, seed=5)
    table = load_registry(REGISTRY_PATH).table("bronze.customers")
    folder = layout.landing_uri(table.source.folder)
    gone = tuple(f"{folder}/2026/11/26/{'x' * 100}-LOAD{i:08d}.csv" for i in range(1000))
    request = UnitRequest(str(table.name), AS_OF, files=(str(landed), *gone), skip_missing_files=True)
    assert len(request.to_json().encode()) > 128 * 1024

    result = SubprocessRunner(registry=REGISTRY_PATH).run(
        types.SimpleNamespace(log=RecordingLog()), table, request
    )

    assert result.error is None, result.error
    assert result.metadata["lakehouse/files_ingested"] == 1
    assert result.metadata["lakehouse/files_missing"] == list(gone), "the child read every named file"


#: A child that writes what is not its report to stdout, then exits with ``status``.
NOT_A_REPORT_CHILD = """
import os
os.write(1, {text!r}.encode())
os._exit({status})
"""


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ('{"table": "silver.customers", "msg": "starting"}\n', 1),  # a JSON log line, then a crash
        ("{'rows': 3}\n", 139),  # a debug print of a dict, then a segfault
        (UnitResult("silver.customers").to_json() + "\n", 1),  # a report of success, then a crash
        (UnitResult("gold.other").to_json() + "\n", 0),  # another table's report
    ],
    ids=["json log line", "python dict", "success then crash", "another table"],
)
def test_stdout_that_is_not_a_report_the_exit_status_agrees_with_fails_the_step(
    tmp_path, monkeypatch, text, status
) -> None:
    (tmp_path / "printing_child.py").write_text(NOT_A_REPORT_CHILD.format(text=text, status=status))
    child_environment(tmp_path, monkeypatch)
    table = load_registry(REGISTRY_PATH).table("silver.customers")

    result = SubprocessRunner(registry="printing_child:REGISTRY", timeout_seconds=60).run(
        types.SimpleNamespace(log=RecordingLog()), table, UnitRequest("silver.customers", AS_OF)
    )

    assert result.error is not None and result.error.kind == "ProcessDied"
    assert f"exited with status {status}" in result.error.message


#: A registry whose one unit prints without a newline and logs bytes that are not UTF-8, then
#: succeeds (a progress bar, a library's raw output); or sleeps past the runner's timeout.
CHATTY_REGISTRY = """
import os, sys, time
from datetime import timedelta
from lakehouse_dagster.declarations.table import Domain, Registry, Table
from lakehouse_dagster.declarations.timing import Freshness, Job
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.units.report import UnitResult

def build(context):
    if os.environ.get("CHATTY_SLEEPS"):
        time.sleep(60)
    print("progress 50%\\r", end="", flush=True)
    os.write(2, b"a log line with a \\xff byte\\n")
    return UnitResult("gold.chatty", metadata={{"lakehouse/note": "done"}})

CHATTY = Table(TableName("gold", "chatty"), "Chatty.", build=build)
REGISTRY = Registry(
    domains=(Domain("chatty", "A chatty unit.", (CHATTY,)),),
    default_job=Job("chatty_job", "Every table."),
    default_freshness=Freshness(warn_after=timedelta(hours=26), fail_after=timedelta(hours=50)),
)
"""


def test_a_unit_that_prints_without_a_newline_and_logs_other_bytes_still_reports(
    tmp_path, monkeypatch
) -> None:
    (tmp_path / "chatty_registry.py").write_text(CHATTY_REGISTRY.format())
    child_environment(tmp_path, monkeypatch)
    table = load_registry("chatty_registry:REGISTRY").table("gold.chatty")
    log = RecordingLog()

    result = SubprocessRunner(registry="chatty_registry:REGISTRY", timeout_seconds=120).run(
        types.SimpleNamespace(log=log), table, UnitRequest("gold.chatty", AS_OF)
    )

    assert result.error is None and result.metadata["lakehouse/note"] == "done"
    assert "a log line with a \ufffd byte" in log.lines


def test_a_unit_past_the_timeout_is_killed_and_the_error_names_the_table_and_the_setting(
    tmp_path, monkeypatch
) -> None:
    (tmp_path / "chatty_registry.py").write_text(CHATTY_REGISTRY.format())
    child_environment(tmp_path, monkeypatch)
    monkeypatch.setenv("CHATTY_SLEEPS", "1")
    table = load_registry("chatty_registry:REGISTRY").table("gold.chatty")
    started = time.monotonic()

    result = SubprocessRunner(registry="chatty_registry:REGISTRY", timeout_seconds=5).run(
        types.SimpleNamespace(log=RecordingLog()), table, UnitRequest("gold.chatty", AS_OF)
    )

    assert time.monotonic() - started < 30
    assert result.error is not None and result.error.kind == "Timeout"
    assert "gold.chatty" in result.error.message and "timeout_seconds (5 s)" in result.error.message


def child_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # this process loads the registry too
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("LAKEHOUSE_DEPLOYMENT", "test")
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "lake"))
