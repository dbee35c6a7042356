"""The events domain end to end, through Dagster: micro-batches requested by the stream's sensor,
silver and the real-time gold requested by declarative automation, against pandas over the
records put on the stream (the moto server's Kinesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pandas as pd
import psycopg
import pytest

from lakehouse_dagster.definitions import build_definitions
from lakehouse_dagster.deployment import LakehouseSettings
from lakehouse_dagster.domains.events.tables import LATENESS
from lakehouse_dagster.domains.sales.money import USD_PER_UNIT, round_money
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.sample_data.events import EVENT_TYPES, ClickRecord, Clickstream
from lakehouse_dagster_tests.streams import create_stream, put

BRONZE = dg.AssetKey(["bronze", "bronze.events"])
GOLD = ("events_per_minute", "funnel_last_hour", "revenue_last_hour")
#: Silver, gold and gold's copies in the warehouse follow each micro-batch.
DERIVED = {
    dg.AssetKey(["silver", "silver.events"]),
    *(dg.AssetKey(["gold", f"gold.{name}"]) for name in GOLD),
    *(dg.AssetKey(["serving", f"serving.{name}"]) for name in GOLD),
}
#: A synthetic timeline in the past: the first records happen just before midnight.
START = datetime(2026, 11, 27, 23, 50, tzinfo=UTC)


class Deployment:
    """The code location as the test deployment builds it, and an instance to run it in."""

    def __init__(self, settings: LakehouseSettings) -> None:
        self.defs = build_definitions(settings)
        self.instance = dg.DagsterInstance.ephemeral()
        self.automation_cursor = None

    def micro_batch(self) -> None:
        sensor = self.defs.resolve_sensor_def("bronze_events_microbatch_sensor")
        result = sensor(dg.build_sensor_context(instance=self.instance, definitions=self.defs))
        assert isinstance(result, dg.SensorResult)
        [request] = result.run_requests
        job = self.defs.resolve_job_def("bronze_events_microbatch_job")
        assert job.execute_in_process(instance=self.instance, tags=request.tags).success

    def automation(self) -> set[dg.AssetKey]:
        """One tick of declarative automation; runs what it requests; returns the keys requested."""
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.automation_cursor
        )
        self.automation_cursor = result.cursor
        keys = {r.key for r in result.results if r.true_subset.size and isinstance(r.key, dg.AssetKey)}
        if keys:
            job = self.defs.resolve_implicit_global_asset_job_def()
            assert job.execute_in_process(instance=self.instance, asset_selection=list(keys)).success
        return keys


@pytest.fixture
def deployment(tmp_path, sail_url, moto_server, warehouse_url) -> tuple[Deployment, str]:
    stream = create_stream(moto_server, shards=2)
    env = {
        "LAKEHOUSE_DEPLOYMENT": "test",
        "LAKEHOUSE_ROOT": str(tmp_path / "lake"),
        "LAKEHOUSE_SPARK_REMOTE": sail_url,
        "LAKEHOUSE_KINESIS_STREAM": stream,
        "LAKEHOUSE_WAREHOUSE_URL": warehouse_url,
        **moto_server.env(),
    }
    return Deployment(LakehouseSettings.from_env(env)), stream


def events_of(records: list[ClickRecord], too_late: set[str]) -> pd.DataFrame:
    """The oracle's silver: JSON objects with a known type and a time, one per event_id (the first
    put), purchases priced, without the events known to be too late."""
    parsed = []
    for record in records:
        try:
            event = json.loads(record.data)
        except ValueError:
            continue
        if isinstance(event, dict):
            parsed.append(event)
    frame = pd.DataFrame(parsed).drop_duplicates("event_id", keep="first")
    frame = frame[frame["event_type"].isin(EVENT_TYPES) & ~frame["event_id"].isin(too_late)].copy()
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    frame["amount"] = frame["price"].map(lambda p: Decimal(p) if isinstance(p, str) else Decimal(0)) * frame[
        "quantity"
    ].fillna(0).astype(int).map(Decimal)
    return frame


def expected_per_minute(events: pd.DataFrame) -> dict:
    events = events.assign(minute=events["event_time"].dt.floor("min"))
    grouped = events.groupby(["minute", "event_type"])
    return {
        (minute.to_pydatetime(), kind): (
            len(group),
            group["user_id"].nunique(),
            group["session_id"].nunique(),
            round_money(
                sum(map(in_usd, group.loc[group["event_type"] == "purchase"].itertuples()), Decimal(0))
            ),
        )
        for (minute, kind), group in grouped
    }


def in_usd(event) -> Decimal:
    """The purchase's exact amount at its currency's reference rate (none: nothing)."""
    return event.amount * USD_PER_UNIT.get(event.currency, Decimal(0))


def expected_last_hour(events: pd.DataFrame) -> tuple[dict, dict]:
    end = events["event_time"].max()
    window = events[(events["event_time"] > end - timedelta(hours=1)) & (events["event_time"] <= end)]
    steps = {kind: set(window.loc[window["event_type"] == kind, "session_id"]) for kind in EVENT_TYPES}
    reached, funnel = None, {}
    for kind in EVENT_TYPES:
        reached = steps[kind] if reached is None else reached & steps[kind]
        funnel[kind] = len(reached)
    purchases = window[window["event_type"] == "purchase"]
    revenue = {}
    for currency, group in purchases.groupby("currency"):
        total = sum(group["amount"], Decimal(0))
        average = round_money(Decimal(total) / len(group))  # 28 digits: no tie is made by the division
        revenue[currency] = (len(group), int(group["quantity"].sum()), total, average)
    return funnel, revenue


def read(tables: DeltaTables, layer: str, name: str) -> list[dict]:
    return tables.read(TableName(layer, name)).toArrow().to_pylist()


def served(warehouse_url: str, name: str, columns: list[str]) -> list[tuple]:
    with psycopg.connect(warehouse_url) as connection:
        quoted = ", ".join(f'"{c}"' for c in columns)
        return sorted(connection.execute(f"SELECT {quoted} FROM serving.{name}").fetchall())


def test_gold_follows_the_stream_through_declarative_automation(
    deployment, tables, moto_server, warehouse_url
) -> None:
    runner, stream = deployment
    tables = DeltaTables(tables.spark, runner.defs.resources["runner"].lake.layout())
    source = Clickstream(seed=21, malformed_share=0.03, duplicate_share=0.05, max_lag=timedelta(seconds=90))
    produced: list[ClickRecord] = []
    assert runner.automation() == set(), "the automation sensor's first tick: nothing happened yet"
    for minutes in (0, 12, 25):  # three micro-batches across midnight
        batch = source.records(700, START + timedelta(minutes=minutes))
        put(moto_server, stream, batch)
        produced += batch
        runner.micro_batch()
        assert runner.automation() == DERIVED, "silver and every gold table follow each micro-batch"

    runner.micro_batch()  # nothing new on the stream
    assert runner.automation() == set(), "a micro-batch without new data rebuilds nothing"

    # Late events: one within the lateness before the watermark (yesterday's partition), one older.
    watermark = max(pd.to_datetime(json.loads(r.data)["event_time"]) for r in produced if r.kind == "event")
    late_ok = _event("late-ok", watermark - LATENESS + timedelta(minutes=5))
    too_late = _event("too-late", watermark - LATENESS - timedelta(minutes=5))
    put(moto_server, stream, [late_ok, too_late])
    produced += [late_ok, too_late]
    runner.micro_batch()
    assert runner.automation() == DERIVED

    events = events_of(produced, too_late={"too-late"})
    silver = read(tables, "silver", "events")
    assert sorted(r["event_id"] for r in silver) == sorted(events["event_id"])
    late_row = next(r for r in silver if r["event_id"] == "late-ok")
    assert late_row["event_date"] == (watermark - LATENESS + timedelta(minutes=5)).date()
    quarantined = read(tables, "quarantine", "events")
    assert [r["event_id"] for r in quarantined if "within_lateness" in r["_failed_expectations"]] == [
        "too-late"
    ]

    per_minute = {
        (r["minute"].astimezone(UTC), r["event_type"]): (
            r["events"],
            r["users"],
            r["sessions"],
            r["revenue_usd"],
        )
        for r in read(tables, "gold", "events_per_minute")
    }
    assert per_minute == expected_per_minute(events)
    funnel, revenue = expected_last_hour(events)
    assert {r["step"]: r["sessions"] for r in read(tables, "gold", "funnel_last_hour")} == funnel
    assert {
        r["currency"]: (r["orders"], r["units"], r["revenue"], r["average_order_value"])
        for r in read(tables, "gold", "revenue_last_hour")
    } == revenue
    for name in GOLD:  # the warehouse holds the last build of each, value for value
        gold = read(tables, "gold", name)
        columns = list(gold[0])
        assert served(warehouse_url, name, columns) == sorted(tuple(row[c] for c in columns) for row in gold)


def _event(event_id: str, at: datetime) -> ClickRecord:
    event = {
        "event_id": event_id,
        "event_type": "purchase",
        "user_id": 1,
        "session_id": f"s-{event_id}",
        "product_id": 9,
        "price": "10.00",
        "quantity": 2,
        "currency": "EUR",
        "event_time": at.isoformat().replace("+00:00", "Z"),
    }
    return ClickRecord(event["session_id"], json.dumps(event).encode(), "event")


def test_the_micro_batch_sensor_keeps_its_cadence(deployment) -> None:
    runner, _ = deployment
    sensor = runner.defs.resolve_sensor_def("bronze_events_microbatch_sensor")
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING, "a stream is configured"

    def tick(cursor):
        return sensor(
            dg.build_sensor_context(instance=runner.instance, cursor=cursor, definitions=runner.defs)
        )

    first = tick(None)
    assert len(first.run_requests) == 1
    assert isinstance(tick(first.cursor), dg.SkipReason), "15 s have not passed"
    assert len(tick(str(float(first.cursor) - 16)).run_requests) == 1
