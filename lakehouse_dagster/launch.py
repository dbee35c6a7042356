"""Run a job of the code location as a run *of the workspace's code location*.

``make run`` executes its runs in its own process, but creates them the way the UI does: from
the code location named in ``workspace.yaml`` (``lakehouse_dagster``, the module
``lakehouse_dagster.definitions``). So ``dagster dev`` shows them in the jobs' Runs tabs and
on the timeline, and re-executes them from the loaded definitions without a warning about
another code location. (``dagster.execute_job`` with a reconstructable job records no code
location at all.)

The code location is loaded in this process, not by a code server: Dagster's own workspace
classes, which have no public equivalent in Dagster 1.13 (pinned).
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import CodeLocation, InProcessCodeLocation
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._utils.hosted_user_process import recon_job_from_origin

#: The code location of ``workspace.yaml`` (and of ``[tool.dagster]`` in pyproject.toml).
CODE_LOCATION = "lakehouse_dagster"
DEFINITIONS_MODULE = "lakehouse_dagster.definitions"


@contextmanager
def code_location(instance: dg.DagsterInstance) -> Iterator[CodeLocation]:
    """The workspace's code location, loaded from the definitions module in this process, with the
    settings of the environment as it is now. Dagster keeps the last job it reconstructed per
    process, keyed by its origin, which does not change with the settings: a second load in a
    process whose environment changed would otherwise plan and run with the first one's
    resources (its lake root)."""
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable, module_name=DEFINITIONS_MODULE
        ),
        location_name=CODE_LOCATION,
    )
    with warnings.catch_warnings():
        # Dagster 1.13's own snapshot of schedules reads a deprecated property of theirs.
        warnings.filterwarnings(
            "ignore", "Property `ScheduleDefinition.environment_vars`", DeprecationWarning
        )
        location = InProcessCodeLocation(origin, instance)
    with location:
        yield location


def create_run(
    instance: dg.DagsterInstance,
    location: CodeLocation,
    job_name: str,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.DagsterRun:
    """A run of ``job_name`` with the code location's origin, as the UI's launchpad makes one."""
    (repository,) = location.get_repositories().values()
    remote_job = location.get_job(
        JobSubsetSelector(
            location_name=location.name, repository_name=repository.name, job_name=job_name, op_selection=None
        )
    )
    config = dict(run_config or {})
    plan = location.get_execution_plan(
        remote_job, config, step_keys_to_execute=None, known_state=None, instance=instance
    ).execution_plan_snapshot
    return instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config=config,
        resolved_op_selection=None,
        step_keys_to_execute=plan.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.tags, **(tags or {})},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )


#: Where a run executed here runs: ``release_dead_runs`` finds those whose process is gone.
HOST_TAG, PID_TAG = "lakehouse/host", "lakehouse/pid"


def run_job(
    instance: dg.DagsterInstance,
    location: CodeLocation,
    job_name: str,
    *,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.ExecutionResult:
    """Create the run, then execute it here, to the end."""
    tags = {**(tags or {}), HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    run = create_run(instance, location, job_name, run_config=run_config, tags=tags)
    assert run.job_code_origin is not None
    return execute_run(recon_job_from_origin(run.job_code_origin), run, instance)


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs executed here (``run_job``) on this host whose process is gone without ending them (a
    SIGKILL, a closed terminal, a power cut): each is marked failed and its pool slots and waiting
    steps are released. Otherwise it holds its slot for ever, and the next run waits for it,
    silently. Returns what was done, a line per run."""
    released = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
            tags={HOST_TAG: socket.gethostname()},
        )
    )
    for run in runs:
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid <= 0 or _is_alive(pid):
            continue
        instance.report_run_failed(run, f"its process ({pid}) ended without ending the run")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(
            f"run {run.run_id} of {run.job_name} (process {pid}) had died without ending: marked "
            "failed, its pool slots released"
        )
    return released


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
