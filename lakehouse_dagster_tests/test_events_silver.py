"""silver.events holds one row per event_id, whatever day a later copy of an event claims."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from lakehouse_dagster.domains.events.tables import LATENESS, SILVER_EVENTS
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster.sample_data.events import ClickRecord
from lakehouse_dagster_tests.streams import create_stream, put
from lakehouse_dagster_tests.units import run_table

MIDNIGHT = datetime(2026, 11, 21, tzinfo=UTC)


def page_view(event_id: str, at: datetime) -> ClickRecord:
    event = {
        "event_id": event_id,
        "event_type": "page_view",
        "user_id": 1,
        "session_id": "s-1",
        "event_time": at.isoformat().replace("+00:00", "Z"),
    }
    return ClickRecord("s-1", json.dumps(event).encode(), "event")


def test_a_copy_of_an_event_claiming_the_next_day_is_not_a_second_event(spark, layout, moto_server) -> None:
    stream = create_stream(moto_server)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    first = page_view("a1", MIDNIGHT - timedelta(minutes=9))
    newer = page_view("b1", MIDNIGHT + timedelta(minutes=90))  # moves the watermark past midnight
    copy = page_view("a1", MIDNIGHT + timedelta(minutes=45))  # within the lateness of that watermark
    assert MIDNIGHT + timedelta(minutes=45) >= MIDNIGHT + timedelta(minutes=90) - LATENESS
    for batch in ([first], [newer], [copy]):
        put(moto_server, stream, batch)
        run_table(tables, "bronze.events")
        run_table(tables, "silver.events")

    rows = {
        (row["event_id"], row["event_time"].astimezone(UTC)) for row in tables.read(SILVER_EVENTS).collect()
    }
    assert rows == {("a1", MIDNIGHT - timedelta(minutes=9)), ("b1", MIDNIGHT + timedelta(minutes=90))}


def test_rejected_records_are_quarantined_and_the_quarantine_is_reported(spark, layout, moto_server) -> None:
    stream = create_stream(moto_server)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    late = page_view("old", MIDNIGHT - LATENESS - timedelta(minutes=1))
    not_an_event = ClickRecord("s-1", b'{"event_type": "page_view"}', "event")
    for batch in ([page_view("now", MIDNIGHT)], [late, not_an_event]):
        put(moto_server, stream, batch)
        run_table(tables, "bronze.events")
        result = run_table(tables, "silver.events")

    quarantined = tables.read(quarantine_table(SILVER_EVENTS)).count()
    assert quarantined == 2
    (report,) = [
        related for related in result.related if related.table == str(quarantine_table(SILVER_EVENTS))
    ]
    assert report.changed
    assert result.metadata["lakehouse/rows_quarantined"] == quarantined
