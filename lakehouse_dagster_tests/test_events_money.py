"""The events' money: revenue per minute in USD at the reference rates, rounded once; a table written
by an earlier version (revenue in mixed currencies, another column) is rebuilt whole, not patched."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pyspark.sql import functions as F

from lakehouse_dagster.domains.events.tables import EVENTS_PER_MINUTE
from lakehouse_dagster.domains.sales.money import USD_PER_UNIT, round_money
from lakehouse_dagster.lake.delta import DeltaTables
from lakehouse_dagster.sample_data.events import Clickstream
from lakehouse_dagster_tests.exact import frame_rows
from lakehouse_dagster_tests.streams import create_stream, put
from lakehouse_dagster_tests.units import run_table

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def expected_revenue(records) -> dict[datetime, Decimal]:
    """USD revenue of purchases per minute, from the records' JSON text (one per event_id)."""
    seen, exact = set(), {}
    for record in records:
        try:
            event = json.loads(record.data)
        except ValueError:
            continue
        if not isinstance(event, dict) or event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        if event["event_type"] == "purchase":
            minute = datetime.fromisoformat(event["event_time"]).replace(second=0, microsecond=0)
            usd = Decimal(event["price"]) * event["quantity"] * USD_PER_UNIT[event["currency"]]
            exact[minute] = exact.get(minute, Decimal(0)) + usd
    return {minute: round_money(total) for minute, total in exact.items()}


def test_revenue_per_minute_is_usd_and_an_older_table_is_rebuilt_whole(spark, layout, moto_server) -> None:
    stream = create_stream(moto_server)
    tables = DeltaTables(spark, replace(layout, aws=moto_server.aws, landing_stream=stream))
    clicks = Clickstream(seed=23, late_share=0.0)
    records = [
        record for minute in range(4) for record in clicks.records(200, NOW + timedelta(minutes=minute))
    ]
    put(moto_server, stream, records)
    for name in ("bronze.events", "silver.events", str(EVENTS_PER_MINUTE)):
        run_table(tables, name)
    built = tables.read(EVENTS_PER_MINUTE)
    assert built.schema["revenue_usd"].dataType.simpleString() == "decimal(18,2)"
    purchases = {
        row.minute.astimezone(UTC): row.revenue_usd
        for row in built.where(F.col("event_type") == "purchase").collect()
    }
    assert purchases == expected_revenue(records)
    assert len(purchases) >= 3

    # As an earlier version wrote it: the revenue of several currencies added up, in another column.
    first_build = frame_rows(built)
    older = built.withColumnRenamed("revenue_usd", "revenue")
    tables.overwrite(EVENTS_PER_MINUTE, older, partition_by=("event_date",))
    run_table(tables, str(EVENTS_PER_MINUTE))
    assert frame_rows(tables.read(EVENTS_PER_MINUTE)) == first_build
