"""Alert sensors: one alert per failed check and per failed run, through the notifier.

- ``alert_on_failed_checks`` reads the runs that ended (succeeded, failed or were canceled)
  after its cursor, and alerts on each failed check evaluation of those runs of the configured
  severity or worse: the table, the check, the failing count, sample keys and a link to the
  run. Its first tick only takes note of where the event log stands. (Run status changes, not
  the check evaluations themselves, drive the cursor: they can be paged on every event log
  storage, the run-sharded SQLite one of ``dagster dev`` included.)
- ``alert_on_run_failure`` (a run-failure sensor) alerts on each failed run, naming the failed
  steps and the error. A step that failed because blocking checks failed (a ``fail``
  expectation, a primary key) is the check sensor's alert, not a second one; a run whose every
  failed step is such a step sends none.

Each alert has an identity (the run, and the asset, check and partition of a check); what was
sent is recorded per (identity, destination) in the instance's key-value store, so a failure
alerts once per destination even when a tick is retried after sending part of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.event_log.base import EventLogRecord

from lakehouse_dagster.monitoring.alerts import Alert, check_alert, run_alert, table_of
from lakehouse_dagster.monitoring.notifier import Notifier
from lakehouse_dagster.quality.checks import Severity

CHECK_SENSOR = "alert_on_failed_checks"
RUN_SENSOR = "alert_on_run_failure"
PAGE = 500
_LEDGER_PREFIX = "lakehouse/alert_sent/"


class AlertNotSentError(RuntimeError):
    """An alert could not reach a destination; the next tick sends what is missing."""


class AlertLedger:
    """Which (alert, destination) pairs were sent, in the instance's key-value store: shared by
    the sensors and durable across ticks and daemon restarts."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.storage = instance.run_storage

    @staticmethod
    def _key(identity: str, destination: str) -> str:
        return _LEDGER_PREFIX + hashlib.sha256(f"{identity}\n{destination}".encode()).hexdigest()

    def sent(self, identity: str, destination: str) -> bool:
        key = self._key(identity, destination)
        return key in self.storage.get_cursor_values({key})

    def record(self, identity: str, destination: str) -> None:
        self.storage.set_cursor_values({self._key(identity, destination): datetime.now(UTC).isoformat()})


def dispatch(alert: Alert, notifier: Notifier, ledger: AlertLedger, log) -> list[str]:
    """Send ``alert`` to every destination it was not sent to yet; return those it went to now.
    Raises ``AlertNotSentError`` after trying all of them if one failed."""
    sent, failed = [], []
    for destination in notifier.destinations():
        if ledger.sent(alert.identity, destination):
            continue
        try:
            notifier.send(destination, alert)
        except Exception as error:
            failed.append(f"{destination}: {error}")
            continue
        ledger.record(alert.identity, destination)
        sent.append(destination)
    if sent:
        log.info(f"alert {alert.identity} sent to {', '.join(sent)}: {alert.summary}")
    if failed:
        raise AlertNotSentError(f"alert {alert.identity} not sent to {'; '.join(failed)}")
    return sent


def run_url(base_url: str | None, run_id: str) -> str | None:
    return f"{base_url.rstrip('/')}/runs/{run_id}" if base_url else None


def _occurred_at(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _at_least(severity: dg.AssetCheckSeverity, minimum: Severity) -> bool:
    return minimum is Severity.WARN or severity == dg.AssetCheckSeverity.ERROR


# Failed checks ---------------------------------------------------------------------------------

#: Runs end in one of these; the check evaluations of a run are read once it has ended.
_ENDINGS = (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED)


def _ended_runs(instance: dg.DagsterInstance, cursor: dict[str, str | None]) -> list[EventLogRecord]:
    """Every run that ended after the cursor (which this moves), oldest first."""
    ended: list[EventLogRecord] = []
    for ending in _ENDINGS:
        while True:
            page = instance.fetch_run_status_changes(
                ending, limit=PAGE, cursor=cursor.get(ending.value), ascending=True
            )
            ended.extend(page.records)
            cursor[ending.value] = page.cursor or cursor.get(ending.value)
            if not page.has_more:
                break
    return sorted(ended, key=lambda record: record.storage_id)


def alert_of_check(entry: EventLogEntry, run: DagsterRun | None, base_url: str | None) -> Alert:
    evaluation = entry.dagster_event.event_specific_data
    return check_alert(
        run_id=entry.run_id,
        asset_path=evaluation.asset_key.path,
        check=evaluation.check_name,
        severity=evaluation.severity.value,
        metadata={key: value.value for key, value in evaluation.metadata.items()},
        description=evaluation.description,
        partition=evaluation.partition or (run.tags.get("dagster/partition") if run else None),
        job=run.job_name if run else None,
        run_url=run_url(base_url, entry.run_id),
        occurred_at=_occurred_at(entry.timestamp),
    )


def failed_checks(instance: dg.DagsterInstance, run_id: str, minimum: Severity) -> list[EventLogEntry]:
    """The run's failed check evaluations of severity ``minimum`` or worse."""
    entries = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    return [
        entry
        for entry in entries
        if not entry.dagster_event.event_specific_data.passed
        and _at_least(entry.dagster_event.event_specific_data.severity, minimum)
    ]


def check_failure_sensor(minimum: Severity, base_url: str | None) -> dg.SensorDefinition:
    @dg.sensor(
        name=CHECK_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"An alert for each failed asset check of severity {minimum.value} or worse, once its "
        "run has ended: the table, the check, the failing count, sample keys and the run.",
    )
    def alert_on_failed_checks(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SkipReason:
        instance = context.instance
        if context.cursor is None:
            newest = {
                ending.value: instance.fetch_run_status_changes(ending, limit=1, ascending=False).cursor
                for ending in _ENDINGS
            }
            context.update_cursor(json.dumps(newest, sort_keys=True))
            return dg.SkipReason("first tick: alerting on the checks of runs that end from now on")
        cursor = json.loads(context.cursor)
        ledger, alerts = AlertLedger(instance), 0
        for record in _ended_runs(instance, cursor):
            run = instance.get_run_by_id(record.run_id)
            for entry in failed_checks(instance, record.run_id, minimum):
                dispatch(alert_of_check(entry, run, base_url), notifier, ledger, context.log)
                alerts += 1
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return dg.SkipReason(f"{alerts} alert(s) sent" if alerts else "no failed checks")

    return alert_on_failed_checks


# Failed runs -----------------------------------------------------------------------------------


def _steps_failed_by_checks(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """Steps with a failed blocking (ERROR) check: their failure is the checks' alert."""
    return {
        entry.step_key
        for entry in failed_checks(instance, run_id, Severity.ERROR)
        if entry.step_key and entry.dagster_event.event_specific_data.blocking is not False
    }


def _tables(step_keys: Iterable[str]) -> list[str]:
    """The tables of failed asset steps (an asset's step key is its key path joined by ``__``)."""
    return list(dict.fromkeys(table_of(step.split("__")) for step in step_keys))


def alert_of_run(context: dg.RunFailureSensorContext, base_url: str | None) -> Alert | None:
    """The run's alert, or None when every failed step failed on blocking checks."""
    run = context.dagster_run
    failures = context.get_step_failure_events()
    by_checks = _steps_failed_by_checks(context.instance, run.run_id)
    unexplained = [event for event in failures if event.step_key not in by_checks]
    if failures and not unexplained:
        return None
    errors = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in unexplained
        if event.step_failure_data.error is not None
    ]
    message = "\n".join(errors) or (context.failure_event.message or "the run failed")
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None and record.end_time else datetime.now(UTC).timestamp()
    return run_alert(
        run_id=run.run_id,
        job=run.job_name,
        failed_steps=[event.step_key for event in unexplained if event.step_key],
        tables=_tables(event.step_key for event in unexplained if event.step_key),
        error=message[:4000],
        partition=run.tags.get("dagster/partition"),
        run_url=run_url(base_url, run.run_id),
        occurred_at=_occurred_at(ended),
    )


def run_failure_alert_sensor(base_url: str | None) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=RUN_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="An alert for each failed run: the failed steps, their tables and the error (a step "
        f"failed by blocking checks is {CHECK_SENSOR}'s alert).",
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
        alert = alert_of_run(context, base_url)
        if alert is None:
            context.log.info(
                f"run {context.dagster_run.run_id}: failed on blocking checks, alerted by checks"
            )
            return
        dispatch(alert, notifier, AlertLedger(context.instance), context.log)

    return alert_on_run_failure
