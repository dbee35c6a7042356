"""A table's unit of work on a Databricks cluster, launched through Dagster Pipes.

    lakehouse-pipes-unit --channel volume     # the entry point of the runner's python_wheel_task

Imports ``dagster_pipes`` (no dependencies), never ``dagster``: the cluster installs the
package's core only. It

1. opens Pipes: bootstrap parameters from the environment (a new job cluster's
   ``spark_env_vars``) or from the command line (an existing cluster, serverless); the context
   and the messages on a Unity Catalog volume or on DBFS (``--channel``);
2. reads the unit from the extras (``units/remote.py``): the request, the lake layout, the
   thresholds, the registry;
3. runs it with ``run_unit`` on the cluster's SparkSession, its log forwarded through Pipes;
4. sends the report back as one custom message, then fails the task if the unit failed, so
   that the Databricks run shows the failure too.

``LAKEHOUSE_PIPES_MOUNT_ROOT`` (``/`` on Databricks) says where DBFS (``<root>/dbfs``) and the
volumes (``<root>/Volumes``) are mounted; tests point it at the fake workspace's folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster_pipes import (
    DAGSTER_PIPES_CLI_PARSER,
    DAGSTER_PIPES_CONTEXT_CLI_ARGUMENT,
    DAGSTER_PIPES_CONTEXT_ENV_VAR,
    DAGSTER_PIPES_MESSAGES_ENV_VAR,
    PipesBlobStoreMessageWriter,
    PipesBufferedFilesystemMessageWriterChannel,
    PipesContext,
    PipesContextData,
    PipesContextLoader,
    PipesEnvVarParamsLoader,
    PipesMappingParamsLoader,
    PipesParams,
    PipesParamsLoader,
    open_dagster_pipes,
)

from lakehouse_dagster.declarations.table import load_registry
from lakehouse_dagster.deployment import pipes_mount_root
from lakehouse_dagster.units.remote import RemoteUnit, report_message
from lakehouse_dagster.units.report import UnitError, UnitResult
from lakehouse_dagster.units.run import run_unit

CHANNELS = ("volume", "dbfs")
#: Where each channel's paths live on the cluster's file system, below the mount root.
_MOUNTS = {"volume": "/", "dbfs": "/dbfs"}


class UnitFailedError(RuntimeError):
    """The unit reported an error (the report, sent before, says which); fails the Databricks task."""


class NotLaunchedByPipesError(RuntimeError):
    pass


def mounted(channel: str, path: str, root: str | None = None) -> str:
    """The local path of a channel's path: ``/tmp/x`` on DBFS is ``/dbfs/tmp/x`` on a cluster;
    ``/Volumes/c/s/v/x`` is itself."""
    base = os.path.join(root or pipes_mount_root(), _MOUNTS[channel].lstrip("/"))
    return os.path.join(base, path.lstrip("/"))


class MountedContextLoader(PipesContextLoader):
    """Reads the context file the Dagster side wrote to the channel (DBFS or a volume)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    @contextmanager
    def load_context(self, params: PipesParams) -> Iterator[PipesContextData]:
        with open(mounted(self.channel, params["path"]), encoding="utf-8") as file:
            yield json.load(file)


class MountedMessageWriter(PipesBlobStoreMessageWriter):
    """Writes message chunks to the folder the Dagster side reads (DBFS or a volume). Unlike
    dagster-pipes' DBFS writer, it asks the cluster for nothing (no log-delivery tags)."""

    def __init__(self, channel: str, *, interval: float = 10) -> None:
        super().__init__(interval=interval)
        self.channel = channel

    def make_channel(self, params: PipesParams) -> PipesBufferedFilesystemMessageWriterChannel:
        return PipesBufferedFilesystemMessageWriterChannel(
            path=mounted(self.channel, params["path"]), interval=self.interval
        )


def params_loader(argv: Sequence[str]) -> PipesParamsLoader:
    """Pipes' bootstrap parameters: on the command line (existing cluster, serverless), else in
    the environment (a new job cluster's ``spark_env_vars``)."""
    if DAGSTER_PIPES_CONTEXT_CLI_ARGUMENT in argv:
        args, _ = DAGSTER_PIPES_CLI_PARSER.parse_known_args(list(argv))
        return PipesMappingParamsLoader(
            {
                DAGSTER_PIPES_CONTEXT_ENV_VAR: args.dagster_pipes_context,
                DAGSTER_PIPES_MESSAGES_ENV_VAR: args.dagster_pipes_messages,
            }
        )
    return PipesEnvVarParamsLoader()


class _ToPipes(logging.Handler):
    """Forwards the unit's log records to the Dagster run's log."""

    def __init__(self, pipes: PipesContext) -> None:
        super().__init__()
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pipes.log.log(record.levelno, self.format(record))
        except Exception:  # a closed channel must not fail the unit
            self.handleError(record)


def cluster_session():
    """The cluster's SparkSession (on Databricks, the one the runtime created)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # as every other runner's session
    return spark


def run_remote(pipes: PipesContext, log: logging.Logger) -> UnitResult:
    """The unit the extras describe, run here. Never raises for the unit's own failure, nor
    for a request it cannot understand: the report says what went wrong."""
    table_name = "unknown table"
    try:
        unit = RemoteUnit.from_extras(pipes.extras)
        table_name = unit.request.table
        table = load_registry(unit.registry).table(unit.request.table)
        spark = cluster_session()
    except Exception as error:
        log.error("%s: cannot start the unit: %s", table_name, error)
        return UnitResult(table_name, error=UnitError.of(error))
    from lakehouse_dagster.lake.delta import DeltaTables
    from lakehouse_dagster.ml.settings import MlflowSettings

    # On the cluster, MLflow is the workspace's, with models in the lake's Unity Catalog catalog.
    models = MlflowSettings.databricks(unit.layout.catalog)
    return run_unit(unit.request, table, DeltaTables(spark, unit.layout), unit.thresholds, log, models)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the unit Pipes describes; raise ``UnitFailedError`` when it failed (after reporting it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lakehouse-pipes-unit", description=__doc__.split("\n")[0])
    parser.add_argument("--channel", choices=CHANNELS, default="volume", help="where Pipes' files are")
    args, _ = parser.parse_known_args(argv)  # Pipes' own arguments are not ours
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    loader = params_loader(argv)
    if not loader.is_dagster_pipes_process():
        raise NotLaunchedByPipesError(
            "lakehouse-pipes-unit runs a unit that a Dagster step launched through Pipes: it found no "
            f"{DAGSTER_PIPES_CONTEXT_CLI_ARGUMENT} argument and no {DAGSTER_PIPES_CONTEXT_ENV_VAR} variable"
        )
    log = logging.getLogger("lakehouse_dagster.remote")
    with open_dagster_pipes(
        params_loader=loader,
        context_loader=MountedContextLoader(args.channel),
        message_writer=MountedMessageWriter(args.channel),
    ) as pipes:
        forward = _ToPipes(pipes)
        log.addHandler(forward)
        try:
            result = run_remote(pipes, log)
        finally:
            log.removeHandler(forward)
        pipes.report_custom_message(report_message(result))
    if result.error is not None:
        raise UnitFailedError(f"{result.table}: {result.error.kind}: {result.error.message}")


if __name__ == "__main__":
    main()
