"""silver.events holds one row per event_id, whatever day a later copy of an event claims."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse_dagster.domains.events.tables import LATENESS, SILVER_EVENTS, SILVER_PROGRESS
from lakehouse_dagster.domains.events.transforms import funnel
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.quality.quarantine import quarantine_table
from lakehouse_dagster.sample_data.events import ClickRecord
from lakehouse_dagster.units.samples import readable_rows
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
    blank_ids = [page_view(blank, MIDNIGHT + timedelta(minutes=i)) for i, blank in enumerate(("", "  ", ""))]
    for batch in ([page_view("now", MIDNIGHT)], [late, not_an_event, *blank_ids]):
        put(moto_server, stream, batch)
        run_table(tables, "bronze.events")
        result = run_table(tables, "silver.events")

    quarantined = tables.read(quarantine_table(SILVER_EVENTS)).count()
    assert quarantined == 5, "three events with a blank id are not one event"
    assert [row["event_id"] for row in tables.read(SILVER_EVENTS).collect()] == ["now"]
    (report,) = [
        related for related in result.related if related.table == str(quarantine_table(SILVER_EVENTS))
    ]
    assert report.changed
    assert result.metadata["lakehouse/rows_quarantined"] == quarantined


def test_a_copy_of_an_accepted_event_claiming_a_later_time_does_not_move_the_watermark(
    spark, layout, moto_server
) -> None:
    stream = create_stream(moto_server)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    first = MIDNIGHT - timedelta(hours=2)
    copy_claims = MIDNIGHT - timedelta(minutes=5)  # the same event_id: not an event
    second = MIDNIGHT - timedelta(hours=1, minutes=30)  # within the lateness of the first
    for batch in ([page_view("a", first)], [page_view("a", copy_claims)], [page_view("b", second)]):
        put(moto_server, stream, batch)
        run_table(tables, "bronze.events")
        result = run_table(tables, "silver.events")

    rows = {
        (row["event_id"], row["event_time"].astimezone(UTC)) for row in tables.read(SILVER_EVENTS).collect()
    }
    assert rows == {("a", first), ("b", second)}
    assert result.metadata["lakehouse/watermark"] == second.isoformat()


def test_times_outside_years_1_to_9999_are_rescued_and_never_fail_a_build(spark, layout, moto_server) -> None:
    """The engine parses a year 10000, and year 0 through an offset; Python cannot hold them, so
    such a time is not parsed: the record is quarantined (its time rescued), and builds go on."""
    stream = create_stream(moto_server)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    odd_times = ["+10000-01-01T00:00:00Z", "-0001-06-01Z", "0001-01-01T00:00:00+01:00"]
    odd = [
        ClickRecord(
            "s-1",
            json.dumps({**json.loads(page_view(f"odd{n}", MIDNIGHT).data), "event_time": t}).encode(),
            "event",
        )
        for n, t in enumerate(odd_times)
    ]
    for batch in ([page_view("ok1", MIDNIGHT), *odd], [page_view("ok2", MIDNIGHT + timedelta(seconds=1))]):
        put(moto_server, stream, batch)
        run_table(tables, "bronze.events")
        run_table(tables, "silver.events")

    assert sorted(row["event_id"] for row in tables.read(SILVER_EVENTS).collect()) == ["ok1", "ok2"]
    quarantined = tables.read(quarantine_table(SILVER_EVENTS)).collect()
    rescued = {row["event_id"]: json.loads(row["_rescued_data"])["event_time"] for row in quarantined}
    assert rescued == {f"odd{n}": t for n, t in enumerate(odd_times)}


def test_a_sample_shows_times_python_cannot_hold(spark) -> None:
    frame = spark.createDataFrame([("+10000-01-01T00:00:00Z",)], "t STRING").selectExpr(
        "try_cast(t AS TIMESTAMP) AS at", "to_date(try_cast(t AS TIMESTAMP)) AS day", "'x' AS name"
    )
    (row,) = readable_rows(frame, landing="/landing")
    assert row["at"].startswith("+10000-01-01") and row["day"] == "+10000-01-01" and row["name"] == "x"


E0, E1, E2 = (
    page_view("e0", MIDNIGHT - timedelta(hours=3)),
    page_view("e1", MIDNIGHT - timedelta(minutes=5)),
    page_view("e2", MIDNIGHT - timedelta(hours=2, minutes=30)),  # late after e1, in time after e0
)


def accepted_in_arrival_order(records: list[ClickRecord]) -> list[str]:
    """The README's rule, one event at a time: late = older than LATENESS before the newest
    event time accepted so far."""
    watermark, accepted = None, []
    for record in records:
        event = json.loads(record.data)
        at = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00"))
        if watermark is None or at >= watermark - LATENESS:
            accepted.append(event["event_id"])
            watermark = max(watermark or at, at)
    return accepted


@pytest.mark.parametrize("silver_after_each_batch", [True, False])
def test_lateness_does_not_depend_on_how_many_micro_batches_a_build_applies(
    spark, layout, moto_server, silver_after_each_batch
) -> None:
    stream = create_stream(moto_server)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    for n, record in enumerate([E0, E1, E2]):
        put(moto_server, stream, [record])
        run_table(tables, "bronze.events")
        if silver_after_each_batch or n != 1:
            run_table(tables, "silver.events")

    ids = sorted(row["event_id"] for row in tables.read(SILVER_EVENTS).collect())
    assert ids == accepted_in_arrival_order([E0, E1, E2])


def test_a_build_killed_before_recording_its_progress_ends_like_one_never_killed(
    spark, layout, moto_server, monkeypatch
) -> None:
    stream = create_stream(moto_server)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    append = DeltaTables.append

    def killed_at_progress(self, name, frame, **kwargs):
        if name == SILVER_PROGRESS:
            raise SystemExit("killed")  # nothing after it runs
        return append(self, name, frame, **kwargs)

    for record in (E0, E1, E2):
        put(moto_server, stream, [record])
        run_table(tables, "bronze.events")
        if record is E1:
            monkeypatch.setattr(DeltaTables, "append", killed_at_progress)
            with pytest.raises(SystemExit):
                run_table(tables, "silver.events")
            monkeypatch.setattr(DeltaTables, "append", append)
        else:
            run_table(tables, "silver.events")

    ids = sorted(row["event_id"] for row in tables.read(SILVER_EVENTS).collect())
    assert ids == accepted_in_arrival_order([E0, E1, E2])


def test_events_without_a_session_are_no_sessions_in_the_funnel(spark) -> None:
    steps = ("page_view", "add_to_cart", "checkout", "purchase")
    rows = [(None, step) for step in steps] + [("s-1", "page_view"), ("s-1", "add_to_cart")]
    events = spark.createDataFrame(rows, "session_id STRING, event_type STRING")

    result = {r["step"]: r["sessions"] for r in funnel(events, None).collect()}

    seen: dict[str, set[str]] = {}
    for session, step in rows:
        if session is not None:
            seen.setdefault(session, set()).add(step)
    expected = {
        step: sum(set(steps[: i + 1]) <= events for events in seen.values()) for i, step in enumerate(steps)
    }
    assert result == expected == {"page_view": 1, "add_to_cart": 1, "checkout": 0, "purchase": 0}
