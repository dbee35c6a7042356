"""``alert_on_stale_tables``: an alert when a table's freshness state changes.

Dagster's freshness daemon (``freshness: enabled: true`` in ``dagster.yaml``) evaluates each
table's freshness policy and records every change of state as an event. This sensor reads those
events after its cursor and alerts when a table becomes stale (``FAIL``, or ``WARN`` too when the
deployment alerts on warnings) and when a stale table is no longer (``PASS``, or ``WARN`` when
only ``FAIL`` alerts). It catches what a failed
run or check cannot: a table nothing materialises any more (a stopped schedule or sensor, an
upstream that never lands).

Like the other alert sensors, its first tick only takes note of where the event log stands, each
alert has an identity (the table and the event), and an alert a destination refused is retried
on later ticks.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.base import EventLogRecord

from lakehouse_dagster.defs.alerts import PAGE, PendingAlerts, occurred_at, send_all
from lakehouse_dagster.monitoring.alerts import Alert, freshness_alert
from lakehouse_dagster.monitoring.notifier import Notifier
from lakehouse_dagster.quality.checks import Severity

FRESHNESS_SENSOR = "alert_on_stale_tables"
_STALE = {Severity.ERROR: {FreshnessState.FAIL}, Severity.WARN: {FreshnessState.FAIL, FreshnessState.WARN}}
#: States of a table materialised lately enough to be judged (not UNKNOWN, NOT_APPLICABLE).
_MATERIALISED = {FreshnessState.PASS, FreshnessState.WARN, FreshnessState.FAIL}


def freshness_changes(instance: dg.DagsterInstance, after: int | None) -> list[EventLogRecord]:
    """Every freshness state change recorded after the event ``after`` (all if None), oldest first."""
    found: list[EventLogRecord] = []
    while True:
        page = instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(event_type=DagsterEventType.FRESHNESS_STATE_CHANGE, after_cursor=after),
            limit=PAGE,
            ascending=True,
        )
        found += page
        if len(page) < PAGE:
            return found
        after = page[-1].storage_id


def _newest_change(instance: dg.DagsterInstance) -> int:
    newest = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(event_type=DagsterEventType.FRESHNESS_STATE_CHANGE), limit=1, ascending=False
    )
    return newest[0].storage_id if newest else 0


def alert_of_change(instance: dg.DagsterInstance, record: EventLogRecord, minimum: Severity) -> Alert | None:
    """The alert of one state change, or None when it is not one to alert on: a state below
    ``minimum``, or a recovery from a state that did not alert."""
    change = record.event_log_entry.dagster_event.event_specific_data
    assert isinstance(change, FreshnessStateChange)
    stale = _STALE[minimum]
    if change.new_state in stale:
        becomes_stale = True
    elif change.previous_state in stale and change.new_state in _MATERIALISED:
        becomes_stale = False  # FAIL to WARN at ERROR: no longer what was alerted on
    else:
        return None
    latest = instance.get_latest_materialization_event(change.key)
    return freshness_alert(
        asset_path=change.key.path,
        stale=becomes_stale,
        state=change.new_state.value,
        previous_state=change.previous_state.value,
        event_id=record.storage_id,
        last_materialised_at=occurred_at(latest.timestamp) if latest else None,
        occurred_at=occurred_at(change.state_change_timestamp),
    )


def _cursor(raw: str | None) -> int | None:
    """The last change read; None without one (the first tick) or for a cursor not this sensor's."""
    return int(raw) if raw and raw.isdecimal() else None


def freshness_alert_sensor(minimum: Severity) -> dg.SensorDefinition:
    states = " or ".join(sorted(state.value for state in _STALE[minimum]))

    @dg.sensor(
        name=FRESHNESS_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"An alert when a table's freshness becomes {states} (nothing materialised it "
        "within its freshness policy), and when it is fresh again. Needs the freshness daemon "
        "(`freshness: enabled: true` in dagster.yaml).",
    )
    def alert_on_stale_tables(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SkipReason:
        instance = context.instance
        after = _cursor(context.cursor)
        if after is None:
            context.update_cursor(str(_newest_change(instance)))
            return dg.SkipReason("first tick: alerting on freshness changes from now on")
        if not instance.freshness_enabled:
            context.log.warning("the instance's freshness daemon is off: no freshness changes are recorded")
        changes = freshness_changes(instance, after)
        alerts = [alert for record in changes if (alert := alert_of_change(instance, record, minimum))]
        summary = send_all(alerts, notifier, PendingAlerts(instance, FRESHNESS_SENSOR), context.log)
        if changes:
            context.update_cursor(str(changes[-1].storage_id))
        return dg.SkipReason(summary)

    return alert_on_stale_tables
