"""Alert sensors: one alert per failed check and per failed run, through the notifier.

- ``alert_on_failed_checks`` reads the runs that ended (succeeded, failed or were canceled)
  after its cursor, and alerts on each failed check evaluation of those runs of the configured
  severity or worse: the table, the check, the failing count, sample keys and a link to the
  run. (Run status changes, not the check evaluations themselves, drive the cursor: they can be
  paged on every event log storage, the run-sharded SQLite one of ``dagster dev`` included.)
- ``alert_on_run_failure`` reads the runs that failed after its cursor and alerts on each,
  naming the failed steps and the error. A step that failed because blocking checks failed (a
  ``fail`` expectation, a primary key) is the check sensor's alert, not a second one; a run
  whose every failed step is such a step sends none.

Both sensors' first tick only takes note of where the event log stands. Each alert has an
identity (the run, and the asset, check and partition of a check); what was sent is recorded
per (identity, destination) in the instance's key-value store, so a failure alerts once per
destination even when a tick is retried after sending part of it. An alert that a destination
refused (Slack down, SNS throttling) does not stop the others: it waits in the sensor's pending
list, also in the key-value store, and every later tick sends it where it is still missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
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
_PENDING_PREFIX = "lakehouse/alerts_pending/"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
#: Alerts a sensor keeps retrying at most (the newest).
MAX_PENDING = 500


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


def occurred_at(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _at_least(severity: dg.AssetCheckSeverity, minimum: Severity) -> bool:
    return minimum is Severity.WARN or severity == dg.AssetCheckSeverity.ERROR


# Failed checks ---------------------------------------------------------------------------------

#: Runs end in one of these; the check evaluations of a run are read once it has ended.
_ENDINGS = (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED)


def _ended_runs(
    instance: dg.DagsterInstance,
    cursor: dict[str, str | None],
    endings: Iterable[DagsterEventType] = _ENDINGS,
) -> list[EventLogRecord]:
    """Every run that ended (in one of ``endings``) after the cursor, which this moves; oldest first."""
    ended: list[EventLogRecord] = []
    for ending in endings:
        while True:
            page = instance.fetch_run_status_changes(
                ending, limit=PAGE, cursor=cursor.get(ending.value), ascending=True
            )
            ended.extend(page.records)
            cursor[ending.value] = page.cursor or cursor.get(ending.value)
            if not page.has_more:
                break
    return sorted(ended, key=lambda record: record.storage_id)


def _own_cursor(raw: str | None, endings: Iterable[DagsterEventType]) -> dict[str, str | None] | None:
    """The sensor's cursor: per ending, the last status change read; None without one of this
    format (the run-failure sensor of an earlier version left a cursor of Dagster's own)."""
    try:
        cursor = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(cursor, dict) or any(ending.value not in cursor for ending in endings):
        return None
    return cursor


def _cursor_now(instance: dg.DagsterInstance, endings: Iterable[DagsterEventType]) -> str:
    """A cursor at the newest run status change of each of ``endings``."""
    newest = {
        ending.value: instance.fetch_run_status_changes(ending, limit=1, ascending=False).cursor
        for ending in endings
    }
    return json.dumps(newest, sort_keys=True)


def partition_of(tags: Mapping[str, str]) -> str | None:
    """A run's partition, or its range (``start..end``) for a backfill or a refresh of a range."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get(RANGE_START), tags.get(RANGE_END)
    if start and end:
        return start if start == end else f"{start}..{end}"
    return None


class PendingAlerts:
    """The alerts a sensor has not sent to every destination yet, in the instance's key-value
    store under the sensor's name (only that sensor writes it)."""

    def __init__(self, instance: dg.DagsterInstance, sensor: str) -> None:
        self.instance, self.key = instance, _PENDING_PREFIX + sensor
        self.storage = instance.run_storage

    def load(self, log) -> list[Alert]:
        """The pending alerts; one stored by another version of ``Alert`` keeps the fields it
        knows, and one that cannot be read is logged and dropped (never a stuck sensor)."""
        stored = self.storage.get_cursor_values({self.key}).get(self.key)
        known = {field.name for field in dataclasses.fields(Alert)}
        alerts = []
        for fields in json.loads(stored) if stored else []:
            try:
                alerts.append(Alert(**{k: v for k, v in fields.items() if k in known}))
            except Exception as error:  # whatever is stored there, the sensor must go on
                log.error(f"a pending alert could not be read, and is dropped: {fields} ({error})")
        return alerts

    def save(self, alerts: list[Alert], log) -> None:
        """Keep the newest ``MAX_PENDING`` alerts: a destination refusing every alert for days must
        not grow the list (and every tick's retries) without bound; the older ones are logged."""
        alerts = sorted(alerts, key=lambda alert: str(alert.occurred_at or ""))
        for dropped in alerts[:-MAX_PENDING] if len(alerts) > MAX_PENDING else []:
            log.error(f"alert {dropped.identity} given up after too many pending alerts: {dropped.summary}")
        kept = alerts[-MAX_PENDING:]
        self.storage.set_cursor_values({self.key: json.dumps([alert.to_dict() for alert in kept])})


def send_all(alerts: list[Alert], notifier: Notifier, pending: PendingAlerts, log) -> str:
    """Send the pending alerts, then ``alerts``, each where it is missing; keep those that did not
    reach every destination for the next tick. Returns what happened, for the tick."""
    ledger, waiting = AlertLedger(pending.instance), {}
    for alert in [*pending.load(log), *alerts]:
        try:
            dispatch(alert, notifier, ledger, log)
        except AlertNotSentError as error:
            log.error(f"{error}; retried on the next tick")
            waiting[alert.identity] = alert
    pending.save(list(waiting.values()), log)
    sent = len(alerts) - sum(1 for alert in alerts if alert.identity in waiting)
    summary = f"{sent} alert(s) sent" if alerts else "nothing new to alert on"
    return summary + (
        f"; {len(waiting)} alert(s) not sent everywhere yet, retried next tick" if waiting else ""
    )


def alert_of_check(entry: EventLogEntry, run: DagsterRun | None, base_url: str | None) -> Alert:
    evaluation = entry.dagster_event.event_specific_data
    return check_alert(
        run_id=entry.run_id,
        asset_path=evaluation.asset_key.path,
        check=evaluation.check_name,
        severity=evaluation.severity.value,
        metadata={key: value.value for key, value in evaluation.metadata.items()},
        description=evaluation.description,
        partition=evaluation.partition or (partition_of(run.tags) if run else None),
        job=run.job_name if run else None,
        run_url=run_url(base_url, entry.run_id),
        occurred_at=occurred_at(entry.timestamp),
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
        cursor = _own_cursor(context.cursor, _ENDINGS)
        if cursor is None:  # the first tick, or a cursor of another format (an earlier version)
            context.update_cursor(_cursor_now(instance, _ENDINGS))
            return dg.SkipReason("first tick: alerting on the checks of runs that end from now on")
        alerts = []
        for record in _ended_runs(instance, cursor):
            run = instance.get_run_by_id(record.run_id)
            alerts += [
                alert_of_check(entry, run, base_url)
                for entry in failed_checks(instance, record.run_id, minimum)
            ]
        summary = send_all(alerts, notifier, PendingAlerts(instance, CHECK_SENSOR), context.log)
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return dg.SkipReason(summary)

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


def alert_of_run(instance: dg.DagsterInstance, failure: EventLogRecord, base_url: str | None) -> Alert | None:
    """The alert of the run whose failure is ``failure``, or None when every failed step failed
    on blocking checks."""
    run_id = failure.run_id
    run = instance.get_run_by_id(run_id)
    failures = [
        entry.dagster_event
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE)
        if entry.dagster_event is not None
    ]
    by_checks = _steps_failed_by_checks(instance, run_id)
    unexplained = [event for event in failures if event.step_key not in by_checks]
    if failures and not unexplained:
        return None
    errors = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in unexplained
        if event.step_failure_data.error is not None
    ]
    message = "\n".join(errors) or (failure.event_log_entry.message or "the run failed")
    job = run.job_name if run is not None else failure.event_log_entry.job_name or "unknown job"
    return run_alert(
        run_id=run_id,
        job=job,
        failed_steps=[event.step_key for event in unexplained if event.step_key],
        tables=_tables(event.step_key for event in unexplained if event.step_key),
        error=message[:4000],
        partition=partition_of(run.tags) if run is not None else None,
        run_url=run_url(base_url, run_id),
        occurred_at=occurred_at(failure.timestamp),
    )


def run_failure_alert_sensor(base_url: str | None) -> dg.SensorDefinition:
    @dg.sensor(
        name=RUN_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="An alert for each failed run: the failed steps, their tables and the error (a step "
        f"failed by blocking checks is {CHECK_SENSOR}'s alert).",
    )
    def alert_on_run_failure(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SkipReason:
        instance, failed = context.instance, (DagsterEventType.RUN_FAILURE,)
        cursor = _own_cursor(context.cursor, failed)
        if cursor is None:  # the first tick, or the cursor of the run-failure sensor it was
            context.update_cursor(_cursor_now(instance, failed))
            return dg.SkipReason("first tick: alerting on runs that fail from now on")
        alerts = []
        for record in _ended_runs(instance, cursor, failed):
            alert = alert_of_run(instance, record, base_url)
            if alert is None:
                context.log.info(f"run {record.run_id}: failed on blocking checks, alerted by checks")
            else:
                alerts.append(alert)
        summary = send_all(alerts, notifier, PendingAlerts(instance, RUN_SENSOR), context.log)
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return dg.SkipReason(summary)

    return alert_on_run_failure
