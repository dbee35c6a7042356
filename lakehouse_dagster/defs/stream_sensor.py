"""Stream tables: a job and a sensor each, one micro-batch per tick; and the automation sensor
that refreshes what is built from them.

The micro-batch sensor requests a run of its table every ``LAKEHOUSE_STREAM_INTERVAL_SECONDS``
unless the previous one is still queued or running (micro-batches never overlap; a slow one
delays the next, which starts as soon as it ends). The tables built from a stream table declare
``Automation.EAGER``: Dagster's automation condition sensor requests them when the micro-batch
brought new data. It runs by default, every third of the stream's interval (5 s at most).
"""

from __future__ import annotations

import time
import warnings

import dagster as dg

from lakehouse_dagster.declarations.table import Registry, Table
from lakehouse_dagster.lake.layout import LakeLayout

AUTOMATION_SENSOR = "lakehouse_automation_sensor"
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,  # still running until it is canceled
]


def microbatch_job_name(table: Table) -> str:
    return f"{table.name.layer}_{table.name.table}_microbatch_job"


def stream_jobs_and_sensors(
    registry: Registry, layout: LakeLayout, interval_seconds: int
) -> tuple[list[dg.UnresolvedAssetJobDefinition], list[dg.SensorDefinition]]:
    jobs, sensors = [], []
    for table in registry.tables:
        if table.stream is None:
            continue
        job = dg.define_asset_job(
            microbatch_job_name(table),
            selection=dg.AssetSelection.assets(dg.AssetKey(table.name.key_path)),
            description=f"One micro-batch of {table.name} from its stream.",
        )
        configured = bool(table.stream.stream or layout.landing_stream)
        jobs.append(job)
        sensors.append(_microbatch_sensor(table, job, interval_seconds, configured))
    return jobs, sensors


def _microbatch_sensor(
    table: Table, job: dg.UnresolvedAssetJobDefinition, interval_seconds: int, configured: bool
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{table.name.layer}_{table.name.table}_microbatch_sensor",
        job=job,
        # Polled more often than the cadence: the next micro-batch starts as soon as the interval
        # has passed and the previous one has ended, not at the next multiple of the interval.
        minimum_interval_seconds=_poll_seconds(interval_seconds),
        # Without a stream (LAKEHOUSE_KINESIS_STREAM unset) there is nothing to read.
        default_status=dg.DefaultSensorStatus.RUNNING if configured else dg.DefaultSensorStatus.STOPPED,
        description=f"A micro-batch of {table.name} every {interval_seconds} s "
        "(LAKEHOUSE_STREAM_INTERVAL_SECONDS), never two at once.",
    )
    def microbatch(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        now = time.time()
        last = float(context.cursor) if context.cursor else 0.0
        if now - last < interval_seconds:
            return dg.SkipReason(f"the last micro-batch was requested {now - last:.0f} s ago")
        running = context.instance.get_run_records(
            dg.RunsFilter(job_name=job.name, statuses=_IN_FLIGHT), limit=1
        )
        if running:
            return dg.SkipReason(f"micro-batch run {running[0].dagster_run.run_id} is still in flight")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(tags={"lakehouse/table": str(table.name)})], cursor=str(now)
        )

    return microbatch


def _poll_seconds(interval_seconds: int) -> int:
    return max(1, min(5, interval_seconds // 3))


def automation_sensor(interval_seconds: int) -> dg.AutomationConditionSensorDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # use_user_code_server: chosen on purpose
        return _automation_sensor(interval_seconds)


def _automation_sensor(interval_seconds: int) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        # A third of the stream's interval: a micro-batch's rows reach gold soon after it ends.
        minimum_interval_seconds=_poll_seconds(interval_seconds),
        # The eager_on_new_data condition is ours (defs/automation.py): evaluated in the code location.
        use_user_code_server=True,
        description="Declarative automation: rebuilds the tables declared Automation.EAGER when a "
        "table they read has new data (the real-time gold after each micro-batch).",
    )
