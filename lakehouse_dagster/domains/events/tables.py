"""The events domain: clickstream events from a Kinesis stream -> bronze -> silver -> real-time gold.

``bronze.events`` takes one micro-batch of the stream per run, driven by the stream's sensor
(every ``LAKEHOUSE_STREAM_INTERVAL_SECONDS``); silver and gold follow it through declarative
automation (eager: rebuilt when what they read has new data). None of them is in a job, so
``make run`` needs no stream. Every fact about a table is declared here; the transforms are
pure functions in ``transforms.py``.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime, timedelta
from functools import partial, reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse_dagster.declarations.table import Domain, Table
from lakehouse_dagster.declarations.timing import Automation, Freshness
from lakehouse_dagster.domains.sales.money import EXACT, PRICE, ROUNDED, USD_PER_UNIT
from lakehouse_dagster.ingest.ledger import with_conflict_retries
from lakehouse_dagster.ingest.sources import BATCH_ID, RESCUED_DATA
from lakehouse_dagster.lake.delta import DeltaTables, TimeSince
from lakehouse_dagster.lake.layout import TableName
from lakehouse_dagster.quality import rules
from lakehouse_dagster.quality.expectations import Action, Expectation
from lakehouse_dagster.serving.spec import Serving
from lakehouse_dagster.stream.sources import ARRIVAL, RECORD_POSITION, StreamSource
from lakehouse_dagster.units.context import UnitContext
from lakehouse_dagster.units.report import UnitResult

from . import transforms as events

BRONZE_EVENTS = TableName("bronze", "events")
SILVER_EVENTS = TableName("silver", "events")
EVENTS_PER_MINUTE = TableName("gold", "events_per_minute")
FUNNEL_LAST_HOUR = TableName("gold", "funnel_last_hour")
REVENUE_LAST_HOUR = TableName("gold", "revenue_last_hour")
#: Where silver.events records the bronze micro-batches it applied and its watermark.
SILVER_PROGRESS = TableName("ops", "stream_progress__silver__events")
_PROGRESS_SCHEMA = (
    "bronze_batch_id STRING, watermark TIMESTAMP, events_added BIGINT, run_id STRING, recorded_at TIMESTAMP"
)

#: How late an event may arrive and still count: an event older than this before the newest
#: event time accepted so far goes to quarantine.events (``within_lateness``). A fork changes it here.
LATENESS = timedelta(hours=1)
#: An event may not claim to be from further in the future than this, judged by its arrival.
CLOCK_SKEW = timedelta(minutes=5)

CLICKSTREAM = StreamSource()
WINDOW_END_DOC = "The newest event time accepted (silver's watermark); the window is the hour before."
SILVER_COLUMNS = (*events.EVENT_FIELDS, events.EVENT_DATE, *events.LINEAGE_COLUMNS)


def silver_progress(tables: DeltaTables) -> tuple[str | None, datetime | None]:
    """The last bronze micro-batch silver.events applied, and its watermark (None, None at first)."""
    if not tables.exists(SILVER_PROGRESS) or not tables.exists(SILVER_EVENTS):
        return None, None
    rows = (
        tables.read(SILVER_PROGRESS).orderBy(F.col("bronze_batch_id").desc()).limit(1).toArrow().to_pylist()
    )
    if not rows:
        return None, None
    watermark = rows[0]["watermark"]
    return rows[0]["bronze_batch_id"], watermark.astimezone(UTC) if watermark else None


def _newest(frame, column: str) -> datetime | None:
    value = frame.agg(F.max(column).alias("newest")).toArrow().column("newest")[0].as_py()
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _count_and_newest(accepted: DataFrame) -> tuple[int, datetime | None]:
    """How many events, and the newest event time among them: one pass."""
    found = accepted.agg(F.count(F.lit(1)).alias("events"), F.max("event_time").alias("newest"))
    row = found.toArrow().to_pylist()[0]
    newest = row["newest"]
    return int(row["events"]), newest.astimezone(UTC) if isinstance(newest, datetime) else newest


def build_silver_events(context: UnitContext, lateness: timedelta) -> UnitResult:
    """The bronze micro-batches not applied yet: parsed, checked, one row per event_id that
    silver does not hold, inserted into its event-date partitions; rejected records go to
    quarantine.events. Silver is written by an insert-only MERGE on event_id, so a rerun after a
    crash, or a build racing another, adds no event twice. The watermark and the events added are
    read back from silver (the events of these micro-batches it holds), so whoever wrote them,
    every build of the same micro-batches records the same progress."""
    tables, run_id = context.tables, context.request.run_id
    applied, watermark = silver_progress(tables)
    pending, newest_batch = _pending(tables, applied)
    judged = events.flag_lateness(
        events.typed_events(pending),
        watermark,
        lateness,
        acceptable=_acceptable(context),
        known_ids=_known_before(tables, applied),
    )
    evaluation = context.evaluate(judged, key_columns=RECORD_POSITION)
    kept = evaluation.kept.drop(events.WITHIN_LATENESS)
    _insert_new_events(tables, events.first_per_event(kept).select(*SILVER_COLUMNS))
    context.quarantine(evaluation, incremental=True, identity=RECORD_POSITION)
    added_count, newest_event = _count_and_newest(_accepted(tables, applied, newest_batch))
    if newest_event is not None and (watermark is None or newest_event > watermark):
        watermark = newest_event
    if newest_batch is not None:
        progress = [(newest_batch, watermark, added_count, run_id, datetime.now(UTC))]
        tables.append(SILVER_PROGRESS, tables.spark.createDataFrame(progress, _PROGRESS_SCHEMA))
    quality = context.report_results(evaluation.results, evaluation.input_rows, evaluation.dropped_rows)
    metadata = {
        "lakehouse/bronze_batches_through": newest_batch or applied,
        "lakehouse/records_read": evaluation.input_rows,
        "lakehouse/events_added": added_count,
        "lakehouse/duplicates_dropped": evaluation.input_rows - evaluation.dropped_rows - added_count,
        "lakehouse/watermark": watermark.isoformat() if watermark else None,
        "lakehouse/lateness_seconds": int(lateness.total_seconds()),
        **quality.metadata,
    }
    return context.result(metadata, quality.outcomes)


def _acceptable(context: UnitContext) -> Column:
    """The drop expectations but the lateness: what an event passes to be accepted."""
    conditions = [
        F.expr(e.condition)
        for e in context.expectations()
        if e.action is Action.DROP and e.condition != events.WITHIN_LATENESS
    ]
    return reduce(operator.and_, conditions, F.lit(True))


def _known_before(tables: DeltaTables, applied: str | None) -> DataFrame | None:
    """The ids of the events silver accepted from the micro-batches up to ``applied`` (not those
    a build that died, or one racing this one, accepted from the pending ones: they count)."""
    if applied is None or not tables.exists(SILVER_EVENTS):
        return None
    return tables.read(SILVER_EVENTS).where(F.col(BATCH_ID) <= F.lit(applied)).select("event_id")


def _pending(tables: DeltaTables, applied: str | None) -> tuple[DataFrame, str | None]:
    """The bronze micro-batches after ``applied``, up to the newest committed now (micro-batches
    keep committing while this runs), and the newest one's id."""
    bronze = tables.read(BRONZE_EVENTS)
    pending = bronze.where(F.col(BATCH_ID) > F.lit(applied)) if applied else bronze
    newest_batch = pending.agg(F.max(BATCH_ID)).first()[0]
    if newest_batch is not None:
        pending = pending.where(F.col(BATCH_ID) <= F.lit(newest_batch))
    return pending, newest_batch


def _insert_new_events(tables: DeltaTables, candidates: DataFrame) -> None:
    """Insert the events (one row per event_id) silver does not hold: an insert-only MERGE, so
    of two builds inserting the same events at once one commits them and the other, after the
    conflict, finds them there. Every day's ids count: a copy of an event may claim another time,
    even another day, than the first copy silver holds."""
    if not tables.exists(SILVER_EVENTS):
        tables.append(SILVER_EVENTS, candidates.limit(0), partition_by=(events.EVENT_DATE,))
    with tables.materialized(SILVER_EVENTS, candidates) as staged:
        if not staged.isEmpty():
            with_conflict_retries(lambda: tables.insert_missing(SILVER_EVENTS, staged, ("event_id",)))


def _accepted(tables: DeltaTables, applied: str | None, newest_batch: str | None) -> DataFrame:
    """The events silver holds from the micro-batches after ``applied`` up to ``newest_batch``:
    those accepted from them (by this build, or by one that died or raced it)."""
    silver = tables.read(SILVER_EVENTS)
    if newest_batch is None:
        return silver.limit(0)
    through = silver.where(F.col(BATCH_ID) <= F.lit(newest_batch))
    return through.where(F.col(BATCH_ID) > F.lit(applied)) if applied else through


def build_events_per_minute(context: UnitContext, lateness: timedelta) -> UnitResult:
    """Rebuilds the minutes that new silver events can have changed: those from ``lateness``
    before the newest minute it held (silver accepts nothing older); the whole table at first, and
    when the table's columns are not the transform's (a table written by an earlier version)."""
    tables = context.tables
    silver = tables.read(SILVER_EVENTS, pinned=True)  # judged and written: the same rows
    newest = None
    if tables.exists(EVENTS_PER_MINUTE):
        held = tables.read(EVENTS_PER_MINUTE)
        if _columns(held) == _columns(events.events_per_minute(silver)):
            newest = _newest(held, "minute")
    if newest is None:
        evaluation = context.evaluate(events.events_per_minute(silver))
        tables.overwrite(EVENTS_PER_MINUTE, evaluation.kept, partition_by=(events.EVENT_DATE,))
        since = None
    else:
        since = (newest - lateness).replace(second=0, microsecond=0)
        window = TimeSince("minute", events.EVENT_DATE, since)
        recent = silver.where(
            (F.col(events.EVENT_DATE) >= F.lit(since.date())) & (F.col("event_time") >= F.lit(since))
        )
        evaluation = context.evaluate(events.events_per_minute(recent))
        tables.replace_window(EVENTS_PER_MINUTE, evaluation.kept, window)
    quality = context.report_results(evaluation.results, evaluation.input_rows, 0)
    metadata = {"lakehouse/rebuilt_since": since.isoformat() if since else "all", **quality.metadata}
    return context.result(metadata, quality.outcomes)


def _columns(frame) -> list[tuple[str, str]]:
    return [(field.name, field.dataType.simpleString()) for field in frame.schema.fields]


def build_last_hour(context: UnitContext, transform) -> UnitResult:
    """The hour of event time up to silver's watermark, rebuilt whole."""
    _, watermark = silver_progress(context.tables)
    silver = context.tables.read(SILVER_EVENTS, pinned=True)  # judged and written: the same rows
    frame = transform(events.last_hour(silver, watermark), watermark)
    evaluation = context.evaluate(frame)
    context.tables.overwrite(context.name, evaluation.kept)
    quality = context.report_results(evaluation.results, evaluation.input_rows, 0)
    metadata = {"lakehouse/window_end": watermark.isoformat() if watermark else None, **quality.metadata}
    return context.result(metadata, quality.outcomes)


KNOWN_EVENT_TYPE = rules.one_of(
    "known_event_type", "event_type", events.EVENT_TYPES, Action.DROP, "a known event type"
)
_LINEAGE_DOCS = {
    "shard_id": "Kinesis shard the record was read from.",
    "sequence_number": "Kinesis sequence number of the record in its shard.",
    ARRIVAL: "When Kinesis received the record (ApproximateArrivalTimestamp).",
    BATCH_ID: "The bronze micro-batch that ingested the record.",
}


def _from_silver(*columns: str) -> tuple[tuple[TableName, str], ...]:
    return tuple((SILVER_EVENTS, column) for column in columns)


DOMAIN = Domain(
    name="events",
    description="Clickstream events from a Kinesis stream, deduplicated by event time, and real-time "
    "metrics over them.",
    owners=("team:web-analytics",),
    # Real time: a table not refreshed for ten minutes is late; for an hour, failing.
    freshness=Freshness(warn_after=timedelta(minutes=10), fail_after=timedelta(hours=1)),
    tables=(
        Table(
            name=BRONZE_EVENTS,
            description="Kinesis records as they arrived, one micro-batch per run, exactly once: the "
            "record's text, shard, sequence number, partition key and arrival time; what is not a "
            "JSON object is in _rescued_data.",
            stream=CLICKSTREAM,
            expectations=(
                Expectation(
                    "arrival_known", f"{ARRIVAL} IS NOT NULL", Action.WARN, "Kinesis stamped its arrival"
                ),
            ),
            column_docs={
                "data": "The record's Data: a JSON object's text; null when it was not one.",
                "partition_key": "The producer's partition key (the session).",
                RESCUED_DATA: "A record that is not a JSON object, under _malformed_record.",
                **_LINEAGE_DOCS,
            },
        ),
        Table(
            name=SILVER_EVENTS,
            description="One typed row per event_id, partitioned by event date: duplicates, records "
            "that are not events and events later than the lateness are kept out (quarantine.events).",
            build=partial(build_silver_events, lateness=LATENESS),
            inputs=(BRONZE_EVENTS,),
            expectations=(
                Expectation(
                    "nothing_rescued",
                    f"{RESCUED_DATA} IS NULL",
                    Action.DROP,
                    "a JSON object whose values fit the event schema",
                ),
                Expectation(
                    "event_id_present",
                    "event_id IS NOT NULL AND trim(event_id) <> ''",
                    Action.DROP,
                    "an event_id, not blank (blank ones would count as one event)",
                ),
                KNOWN_EVENT_TYPE,
                Expectation(
                    "plausible_event_time",
                    f"event_time IS NOT NULL AND event_time <= {ARRIVAL} + INTERVAL "
                    f"{int(CLOCK_SKEW.total_seconds())} SECONDS",
                    Action.DROP,
                    "an event time, not after its arrival (give or take the producers' clock skew)",
                ),
                Expectation(
                    "within_lateness",
                    events.WITHIN_LATENESS,
                    Action.DROP,
                    "no older than the lateness before the newest event accepted",
                ),
                Expectation(
                    "purchase_priced",
                    "event_type <> 'purchase' OR (price >= 0 AND quantity > 0 AND currency IS NOT NULL)",
                    Action.DROP,
                    "a purchase has a price, a quantity and a currency",
                ),
                Expectation("session_present", "session_id IS NOT NULL", Action.WARN, "a session"),
                Expectation(
                    "known_currency",
                    "currency IS NULL OR currency IN ("
                    + ", ".join(f"'{code}'" for code in sorted(USD_PER_UNIT))
                    + ")",
                    Action.WARN,
                    "a currency with a reference rate (otherwise its revenue adds nothing in USD)",
                ),
            ),
            primary_key=("event_id",),
            automation=Automation.EAGER,
            column_docs={
                "event_id": "The producer's id of the event: one row each.",
                "event_type": ", ".join(events.EVENT_TYPES) + ".",
                "event_time": "When the event happened (UTC), as the producer says.",
                events.EVENT_DATE: "The day of event_time: the partition.",
                "price": PRICE.doc("Unit price (purchases and carts), in the event's currency."),
                **_LINEAGE_DOCS,
            },
        ),
        Table(
            name=EVENTS_PER_MINUTE,
            description="Events, users, sessions and revenue in USD per event-time minute and event type.",
            build=partial(build_events_per_minute, lateness=LATENESS),
            inputs=(SILVER_EVENTS,),
            expectations=(
                rules.one_of(
                    "known_event_type", "event_type", events.EVENT_TYPES, Action.FAIL, "a known type"
                ),
                Expectation("events_positive", "events > 0", Action.FAIL, "every row counts events"),
                Expectation("revenue_not_negative", "revenue_usd >= 0", Action.FAIL, "revenue of 0 or more"),
            ),
            primary_key=("minute", "event_type"),
            automation=Automation.EAGER,
            serving=Serving(),
            column_docs={
                "minute": "The minute of event time (UTC).",
                "events": "Events of the type in the minute.",
                "revenue_usd": ROUNDED.doc(
                    "Revenue of the minute's purchases in USD at reference rates (each purchase's price x "
                    "quantity times its currency's rate, added up exactly); a currency without a rate adds "
                    "nothing (silver.events warns known_currency)."
                ),
            },
            column_lineage={
                "minute": _from_silver("event_time"),
                "event_type": _from_silver("event_type"),
                "events": _from_silver("event_id"),
                "users": _from_silver("user_id"),
                "sessions": _from_silver("session_id"),
                "revenue_usd": _from_silver("price", "quantity", "currency"),
            },
        ),
        Table(
            name=FUNNEL_LAST_HOUR,
            description="Sessions reaching view -> cart -> checkout -> purchase in the last hour of event "
            "time, with the conversion between steps.",
            build=partial(build_last_hour, transform=events.funnel),
            inputs=(SILVER_EVENTS,),
            expectations=(
                Expectation(
                    "conversion_is_a_share",
                    "conversion_from_previous IS NULL OR conversion_from_previous BETWEEN 0 AND 1",
                    Action.FAIL,
                    "no step converts more sessions than the step before",
                ),
                Expectation("sessions_not_negative", "sessions >= 0", Action.FAIL, "a count"),
            ),
            primary_key=("step",),
            automation=Automation.EAGER,
            serving=Serving(),
            column_docs={
                "sessions": "Sessions with this step's event and every earlier step's in the window.",
                "conversion_from_previous": "sessions / the previous step's sessions.",
                "conversion_from_first": "sessions / the sessions that viewed.",
                "window_end": WINDOW_END_DOC,
            },
            column_lineage={"sessions": _from_silver("session_id", "event_type", "event_time")},
        ),
        Table(
            name=REVENUE_LAST_HOUR,
            description="Purchases, units, revenue and average order value per currency in the last hour "
            "of event time.",
            build=partial(build_last_hour, transform=events.revenue),
            inputs=(SILVER_EVENTS,),
            expectations=(
                Expectation("revenue_not_negative", "revenue >= 0", Action.FAIL, "revenue of 0 or more"),
                Expectation("orders_positive", "orders > 0", Action.FAIL, "every row counts orders"),
                rules.not_negative("units_not_negative", "units", Action.FAIL, "units of 0 or more"),
            ),
            primary_key=("currency",),
            automation=Automation.EAGER,
            serving=Serving(),
            column_docs={
                "revenue": EXACT.doc("Sum of price x quantity of the window's purchases, in the currency."),
                "average_order_value": ROUNDED.doc("revenue / orders."),
                "window_end": WINDOW_END_DOC,
            },
            column_lineage={
                "orders": _from_silver("event_id"),
                "units": _from_silver("quantity"),
                "revenue": _from_silver("price", "quantity"),
                "average_order_value": _from_silver("price", "quantity", "event_id"),
                "currency": _from_silver("currency"),
            },
        ),
    ),
)
