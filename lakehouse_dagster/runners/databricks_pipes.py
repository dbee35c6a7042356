"""A unit as a Databricks job run through dagster-databricks' Pipes clients: the submitted task,
the Pipes channel, and how the run's outcome becomes the unit's report.

Verified on dagster-databricks 0.29.27 / databricks-sdk 0.60:
- a message reader counts chunks: a new one per run;
- on an interrupt the clients cancel the Databricks run and then return as if it had ended:
  ``_Tracked`` notices and interrupts the step;
- a failed run raises ``DagsterPipesExecutionError`` with the run's state message only (on a
  real workspace, "Workload failed, see run output for details"): the report sent through Pipes
  carries the real error; without one, the run's output (``runs/get-output``) is asked for it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError
from dagster_databricks.pipes import (
    PipesDatabricksClient,
    PipesDatabricksServerlessClient,
    PipesDbfsContextInjector,
    PipesDbfsMessageReader,
    PipesUnityCatalogVolumesContextInjector,
    PipesUnityCatalogVolumesMessageReader,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import compute, jobs

from lakehouse_dagster.declarations.table import Table
from lakehouse_dagster.quality.thresholds import Thresholds
from lakehouse_dagster.runners.settings import wheel_name
from lakehouse_dagster.units.remote import RemoteUnit, report_from_messages
from lakehouse_dagster.units.report import UnitError, UnitResult
from lakehouse_dagster.units.request import UnitRequest

if TYPE_CHECKING:
    from lakehouse_dagster.runners.databricks import DatabricksRunner

PACKAGE = "lakehouse_dagster"
#: The console script of the wheel that runs a unit (setup.py).
ENTRY_POINT = "lakehouse-pipes-unit"
ENVIRONMENT_KEY = "lakehouse"
#: How often a lost run's state is asked for after cancelling it, a poll interval apart.
LOST_RUN_POLLS = 20
_STOPPED = (
    jobs.RunLifeCycleState.TERMINATING,
    jobs.RunLifeCycleState.TERMINATED,
    jobs.RunLifeCycleState.SKIPPED,
    jobs.RunLifeCycleState.INTERNAL_ERROR,
)
#: The most bytes one DBFS read returns.
DBFS_READ_BYTES = 1024 * 1024


# The task -------------------------------------------------------------------------------------


def wheel_path(runner: DatabricksRunner) -> str:
    """The wheel of the version installed here: the cluster runs the code the step was built from."""
    return f"{runner.artifacts.rstrip('/')}/{wheel_name(version(PACKAGE))}"


def task_key(table: Table) -> str:
    return f"{table.name.layer}__{table.name.table}"


def submit_task(runner: DatabricksRunner, table: Table, context_tags: Mapping[str, str]) -> jobs.SubmitTask:
    """The ``python_wheel_task`` of a unit on the runner's compute. Pipes adds its bootstrap
    parameters (environment variables of a new cluster, or command-line parameters)."""
    channel = "volume" if runner.compute == "serverless" else runner.channel
    wheel_task = jobs.PythonWheelTask(
        package_name=PACKAGE, entry_point=ENTRY_POINT, parameters=["--channel", channel]
    )
    task = jobs.SubmitTask(
        task_key=task_key(table), python_wheel_task=wheel_task, timeout_seconds=runner.timeout_seconds
    )
    if runner.compute == "serverless":
        task.environment_key = ENVIRONMENT_KEY
        return task
    task.libraries = [compute.Library(whl=wheel_path(runner))]
    if runner.compute == "existing_cluster":
        task.existing_cluster_id = runner.cluster_id
        return task
    spec = runner.job_cluster
    assert spec is not None, "job_cluster compute needs the job cluster's settings"
    task.new_cluster = compute.ClusterSpec(
        spark_version=spec.spark_version,
        node_type_id=spec.node_type,
        autoscale=compute.AutoScale(min_workers=spec.min_workers, max_workers=spec.max_workers),
        policy_id=spec.policy_id,
        # The policy's fixed values (auto-termination, disk encryption, its tags) apply.
        apply_policy_default_values=True if spec.policy_id else None,
        aws_attributes=compute.AwsAttributes(instance_profile_arn=spec.instance_profile_arn)
        if spec.instance_profile_arn
        else None,
        # Unity Catalog: a single-user cluster, running as the submitting service principal.
        data_security_mode=compute.DataSecurityMode.SINGLE_USER,
        custom_tags={**spec.tags, **context_tags},
    )
    return task


def submit_args(
    runner: DatabricksRunner, context: dg.AssetExecutionContext, table: Table, request: UnitRequest
) -> dict[str, Any]:
    """The run's name, its timeout and an idempotency token: a retried submission of the same
    step attempt (the SDK retries on a lost response) joins the run it started."""
    run_id = context.run.run_id
    partition = f" {request.partition.label()}" if request.partition else ""
    # A table's build and its maintenance are two units, even in one Dagster run.
    action = " maintenance" if request.maintenance is not None else ""
    token = hashlib.sha256(f"{run_id}/{table.name}{action}/{context.retry_number}".encode()).hexdigest()
    args: dict[str, Any] = {
        "run_name": f"lakehouse {table.name}{action}{partition} (dagster run {run_id[:8]})",
        "timeout_seconds": runner.timeout_seconds,
        "idempotency_token": token,
    }
    if runner.compute == "serverless":
        args["environments"] = [
            jobs.JobEnvironment(
                environment_key=ENVIRONMENT_KEY,
                spec=compute.Environment(
                    environment_version=runner.serverless_environment, dependencies=[wheel_path(runner)]
                ),
            )
        ]
    return args


def cluster_tags(context: dg.AssetExecutionContext, table: Table) -> dict[str, str]:
    """Tags that attribute a job cluster's cost to a Dagster run and a table."""
    return {"dagster_run_id": context.run.run_id, "lakehouse_table": str(table.name)}


# The Pipes clients ------------------------------------------------------------------------------


class DatabricksRunLostError(RuntimeError):
    """The step could no longer follow its Databricks run (an API error while polling); the
    message says whether the run was cancelled or may still be running."""


class _Tracked:
    """Remembers the Databricks run it submitted, and whether the step was interrupted while
    the run went on (the clients then cancel the run and return as if it had ended). A run the
    step cannot follow any more is cancelled before the step fails: a retried step must never
    write beside it."""

    run_id: int | None = None
    interrupted: bool = False

    def _poll_til_success(self, context, run_id: int) -> None:
        self.run_id = run_id
        try:
            super()._poll_til_success(context, run_id)  # type: ignore[misc]
        except dg.DagsterExecutionInterruptedError:
            self.interrupted = True
            raise
        except DagsterPipesExecutionError:
            raise  # the run ended, and failed
        except Exception as error:
            raise DatabricksRunLostError(
                f"following Databricks run {run_id} failed ({type(error).__name__}: {error}); "
                + self._cancel(run_id)
            ) from error

    def _cancel(self, run_id: int) -> str:
        """Cancel the run and wait until its task has stopped; say what became of it."""
        jobs_api = self.client.jobs  # type: ignore[attr-defined]
        try:
            jobs_api.cancel_run(run_id)
        except Exception as error:
            return (
                f"cancelling it failed too ({error}): it may still be running, so cancel it in the "
                "workspace before running the step again"
            )
        for _ in range(LOST_RUN_POLLS):
            try:
                state = jobs_api.get_run(run_id).state
            except Exception:
                state = None
            if state is not None and state.life_cycle_state in _STOPPED:
                return "the run was cancelled"
            time.sleep(self.poll_interval_seconds)  # type: ignore[attr-defined]
        return (
            "the run was asked to cancel: check in the workspace that it stopped before running "
            "the step again"
        )


class TrackedDatabricksClient(_Tracked, PipesDatabricksClient):
    pass


class TrackedServerlessClient(_Tracked, PipesDatabricksServerlessClient):
    pass


class _KeepsMessages:
    """Keeps the message handler, to read the report also when the run failed (the client then
    raises before it returns anything)."""

    handler = None

    @contextmanager
    def read_messages(self, handler) -> Iterator[Any]:
        self.handler = handler
        with super().read_messages(handler) as params:  # type: ignore[misc]
            yield params

    def custom_messages(self) -> Sequence[Any]:
        return self.handler.get_custom_messages() if self.handler is not None else ()


class VolumeMessageReader(_KeepsMessages, PipesUnityCatalogVolumesMessageReader):
    pass


class DbfsMessageReader(_KeepsMessages, PipesDbfsMessageReader):
    """Reads each chunk whole: dagster-databricks reads one DBFS block (512 KB by default), so the
    last chunk of a run with a large report lost the report."""

    def download_messages_chunk(self, index: int, params: Mapping[str, Any]) -> str | None:
        path = os.path.join(params["path"], f"{index}.json")
        data = bytearray()
        try:
            while True:
                read = self.dbfs_client.read(path, offset=len(data), length=DBFS_READ_BYTES)
                block = base64.b64decode(read.data or "")
                data += block
                if len(block) < DBFS_READ_BYTES:
                    return data.decode("utf-8")
        except OSError:  # the chunk does not exist yet
            return None


def pipes_client(runner: DatabricksRunner, workspace: WorkspaceClient) -> tuple[_Tracked, _KeepsMessages]:
    """A client with a new context injector and message reader (a reader counts chunks: one per run)."""
    common = {"poll_interval_seconds": runner.poll_interval_seconds, "forward_termination": True}
    # The unit's log comes through Pipes messages; the driver's stdout and stderr stay on the run page.
    if runner.compute == "serverless" or runner.channel == "volume":
        assert runner.volume, "the volume channel needs a Unity Catalog volume"
        reader: _KeepsMessages = VolumeMessageReader(
            interval=runner.messages_interval_seconds,
            client=workspace,
            volume_path=runner.volume,
            include_stdio_in_messages=False,
        )
        injector = PipesUnityCatalogVolumesContextInjector(client=workspace, volume_path=runner.volume)
    else:
        reader = DbfsMessageReader(
            interval=runner.messages_interval_seconds, client=workspace, include_stdio_in_messages=False
        )
        injector = PipesDbfsContextInjector(client=workspace)
    if runner.compute == "serverless":
        client: _Tracked = TrackedServerlessClient(
            workspace, runner.volume, context_injector=injector, message_reader=reader, **common
        )
    else:
        client = TrackedDatabricksClient(
            workspace, context_injector=injector, message_reader=reader, **common
        )
    return client, reader


# One unit ---------------------------------------------------------------------------------------


def run_on_databricks(
    runner: DatabricksRunner, context: dg.AssetExecutionContext, table: Table, request: UnitRequest
) -> UnitResult:
    """The unit's report, whatever happened to the Databricks run (a run the step lost track of
    is cancelled first). Raises only when the step was interrupted (after cancelling the run)
    or when the run could not be submitted."""
    workspace = runner.workspace.client()
    client, reader = pipes_client(runner, workspace)
    unit = RemoteUnit(request, runner.lake.layout(), Thresholds.load(runner.thresholds_file), runner.registry)
    failure: DagsterPipesExecutionError | None = None
    try:
        with warnings.catch_warnings():
            # Dagster 1.13's Pipes session and dagster-databricks call helpers Dagster marks preview.
            warnings.filterwarnings("ignore", "Function `Pipes", dg.PreviewWarning)
            client.run(  # type: ignore[attr-defined]
                context=context,
                extras=unit.to_extras(),
                task=submit_task(runner, table, cluster_tags(context, table)),
                submit_args=submit_args(runner, context, table, request),
            )
    except DagsterPipesExecutionError as error:
        failure = error
    except DatabricksRunLostError as error:  # cancelled (or said to be still running): no report
        lost = UnitResult(str(table.name), error=UnitError("DatabricksRunLost", str(error), ""))
        lost.metadata["databricks/run_id"] = client.run_id
        return lost
    if client.interrupted:
        raise dg.DagsterExecutionInterruptedError(
            f"{table.name}: the Dagster run was terminated; Databricks run {client.run_id} was cancelled"
        )
    if client.run_id is None:  # Pipes failed before the run was submitted
        assert failure is not None
        raise failure
    run = workspace.jobs.get_run(client.run_id)
    result = report_from_messages(reader.custom_messages())
    if result is None:
        result = missing_report(workspace, table, run, failure)
    elif failure is not None and result.error is None:
        context.log.warning(
            f"{table.name}: the unit reported success, then the Databricks run failed: {failure}"
        )
    result.metadata["databricks/run_id"] = client.run_id
    if run.run_page_url:
        result.metadata["databricks/run_url"] = run.run_page_url
    return result


def missing_report(
    workspace: WorkspaceClient, table: Table, run: jobs.Run, failure: Exception | None
) -> UnitResult:
    """The error of a run that sent no report: it died before Pipes opened (a library that did
    not install, a cluster that did not start) or was killed. The run's output says why."""
    state = run.state or jobs.RunState()
    ended = "/".join(str(s.value) for s in (state.life_cycle_state, state.result_state) if s is not None)
    message = f"the Databricks run ended {ended or 'in an unknown state'} without a report"
    if state.state_message:
        message += f": {state.state_message}"
    trace = ""
    task_run_id = run.tasks[0].run_id if run.tasks else run.run_id
    try:
        output = workspace.jobs.get_run_output(task_run_id)
    except Exception as error:  # the run's output is a help, not a requirement
        output, trace = None, f"(the run's output could not be read: {error})"
    if output is not None and output.error:
        message += f"; the task's error: {output.error}"
        trace = output.error_trace or ""
    kind = "DatabricksRunFailed" if failure is not None else "ReportMissing"
    return UnitResult(str(table.name), error=UnitError(kind, message, trace))
